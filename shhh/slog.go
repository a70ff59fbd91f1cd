package shhh

import (
	"context"
	"log/slog"
)

// NewHandler returns a slog.Handler that redacts a record before next sees
// it: the message and every attribute, including those added with WithAttrs
// and those inside groups. String values go through Redact; errors become
// their redacted Error() text; other non-scalar values (structs, maps,
// slices) go through RedactValue, so next receives their redacted JSON shape.
// LogValuers are resolved first. Attribute keys and group names are left as
// they are: they come from code, not data.
func NewHandler(next slog.Handler, r *Redactor) slog.Handler {
	return &handler{next: next, r: r}
}

type handler struct {
	next slog.Handler
	r    *Redactor
}

func (h *handler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.next.Enabled(ctx, level)
}

func (h *handler) Handle(ctx context.Context, rec slog.Record) error {
	msg, _ := h.r.Redact(rec.Message)
	out := slog.NewRecord(rec.Time, rec.Level, msg, rec.PC)
	rec.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(h.attr(a))
		return true
	})
	return h.next.Handle(ctx, out)
}

func (h *handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	red := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		red[i] = h.attr(a)
	}
	return &handler{next: h.next.WithAttrs(red), r: h.r}
}

func (h *handler) WithGroup(name string) slog.Handler {
	return &handler{next: h.next.WithGroup(name), r: h.r}
}

func (h *handler) attr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		s, _ := h.r.Redact(v.String())
		return slog.String(a.Key, s)
	case slog.KindGroup:
		group := v.Group()
		red := make([]slog.Attr, len(group))
		for i, g := range group {
			red[i] = h.attr(g)
		}
		return slog.Attr{Key: a.Key, Value: slog.GroupValue(red...)}
	case slog.KindAny:
		if err, ok := v.Any().(error); ok {
			s, _ := h.r.Redact(err.Error())
			return slog.String(a.Key, s)
		}
		red, _ := h.r.RedactValue(v.Any())
		return slog.Any(a.Key, red)
	}
	return slog.Attr{Key: a.Key, Value: v}
}
