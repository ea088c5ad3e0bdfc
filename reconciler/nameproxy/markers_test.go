package nameproxy

import "github.com/developer-mesh/reconciler/reconciler"

// Markers is the core's reconciler.Names. The check sits in a test so that
// the package, which cmd/nameproxy links into every proxy, does not import
// the core.
var _ reconciler.Names = Markers{}
