package state

import (
	"reflect"
	"strings"
	"testing"
)

// TestEnvAndSecretsHidden: every env or secrets map of the env file's types,
// wherever it sits (a service, the migrations job, the defaults), is
// hidden in the preview, so a field added later cannot print values or
// references.
func TestEnvAndSecretsHidden(t *testing.T) {
	t.Parallel()
	seen := map[reflect.Type]bool{}
	var walk func(t0 reflect.Type, path string)
	walk = func(t0 reflect.Type, path string) {
		for t0.Kind() == reflect.Pointer || t0.Kind() == reflect.Slice || t0.Kind() == reflect.Map {
			t0 = t0.Elem()
		}
		if t0.Kind() != reflect.Struct || seen[t0] {
			return
		}
		seen[t0] = true
		for i := 0; i < t0.NumField(); i++ {
			f := t0.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if (name == "env" || name == "secrets") && f.Tag.Get("settings") != "hidden" {
				t.Errorf("%s.%s (%s) is shown in the preview: tag it settings:\"hidden\"", path, name, t0.Name())
			}
			walk(f.Type, path+"."+name)
		}
	}
	walk(reflect.TypeOf(Env{}), "env")
}
