package host

import (
	"context"
	"fmt"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/developer-mesh/reconciler/reconciler"
	"github.com/developer-mesh/reconciler/state"
)

// scrubNotifier scrubs every text of an event before it is delivered.
type scrubNotifier struct {
	n  reconciler.Notifier
	sc *state.Scrubber
}

func (s scrubNotifier) Notify(ctx context.Context, e reconciler.Event) {
	e.Error = s.sc.Scrub(e.Error)
	e.Message = s.sc.Scrub(e.Message)
	s.n.Notify(ctx, e)
}

// scrubLogger is log with every message and string or error field
// scrubbed.
func scrubLogger(log *zap.Logger, sc *state.Scrubber) *zap.Logger {
	return log.WithOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core { return scrubCore{c, sc} }))
}

// scrubCore scrubs what the logger writes, whatever code logged it.
type scrubCore struct {
	zapcore.Core
	sc *state.Scrubber
}

func (c scrubCore) With(fs []zapcore.Field) zapcore.Core {
	return scrubCore{c.Core.With(c.fields(fs)), c.sc}
}

func (c scrubCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c scrubCore) Write(e zapcore.Entry, fs []zapcore.Field) error {
	e.Message = c.sc.Scrub(e.Message)
	return c.Core.Write(e, c.fields(fs))
}

// fields are fs with strings and errors scrubbed; a field of another kind
// (a number, a duration) holds no secret, and a string list is scrubbed
// item by item.
func (c scrubCore) fields(fs []zapcore.Field) []zapcore.Field {
	out := make([]zapcore.Field, len(fs))
	for i, f := range fs {
		switch f.Type {
		case zapcore.StringType:
			f.String = c.sc.Scrub(f.String)
		case zapcore.ErrorType:
			if err, ok := f.Interface.(error); ok && err != nil {
				f = zap.String(f.Key, c.sc.Scrub(err.Error()))
			}
		case zapcore.ArrayMarshalerType, zapcore.ObjectMarshalerType, zapcore.ReflectType, zapcore.StringerType:
			// Rendered here, so that the scrubber sees the text.
			enc := zapcore.NewMapObjectEncoder()
			f.AddTo(enc)
			f = zap.Any(f.Key, scrubAny(c.sc, enc.Fields[f.Key]))
		}
		out[i] = f
	}
	return out
}

func scrubAny(sc *state.Scrubber, v any) any {
	switch v := v.(type) {
	case string:
		return sc.Scrub(v)
	case []any:
		out := make([]string, len(v))
		for i, x := range v {
			out[i] = sc.Scrub(fmt.Sprint(x))
		}
		return out
	}
	return sc.Scrub(fmt.Sprint(v))
}
