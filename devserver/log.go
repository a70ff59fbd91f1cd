package devserver

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"go.temporal.io/server/common/log"
	"go.temporal.io/server/common/log/tag"
)

// dropped reports whether a server log message is expected in this setup and
// carries no information for the operator.
func dropped(msg string) bool {
	// The HTTP API (and with it Nexus) is deliberately not enabled.
	return strings.HasPrefix(msg, "HTTP API port has not been set")
}

// fatalError is the panic value of serverLogger.Fatal.
type fatalError struct{ msg string }

func (e fatalError) Error() string { return "temporal server fatal: " + e.msg }

// serverLogger adapts a *slog.Logger to the Temporal server's log.Logger.
// Records below level are dropped before their tags are converted. level is
// shared by every logger derived with With, so Stop can quieten all of them.
type serverLogger struct {
	sl    *slog.Logger
	level *slog.LevelVar
}

var (
	_ log.Logger     = (*serverLogger)(nil)
	_ log.WithLogger = (*serverLogger)(nil)
)

func newServerLogger(sl *slog.Logger, level *slog.LevelVar) *serverLogger {
	return &serverLogger{sl: sl.With(slog.String("component", "temporal")), level: level}
}

func (l *serverLogger) Debug(msg string, tags ...tag.Tag) { l.log(slog.LevelDebug, msg, tags) }
func (l *serverLogger) Info(msg string, tags ...tag.Tag)  { l.log(slog.LevelInfo, msg, tags) }
func (l *serverLogger) Warn(msg string, tags ...tag.Tag)  { l.log(slog.LevelWarn, msg, tags) }
func (l *serverLogger) Error(msg string, tags ...tag.Tag) { l.log(slog.LevelError, msg, tags) }

// DPanic logs at error level; like zap's production loggers it does not panic.
func (l *serverLogger) DPanic(msg string, tags ...tag.Tag) { l.log(slog.LevelError, msg, tags) }

// Panic logs at error level and panics, as the zap logger does.
func (l *serverLogger) Panic(msg string, tags ...tag.Tag) {
	l.log(slog.LevelError, msg, tags)
	panic(fatalError{msg: describe(msg, tags)})
}

// Fatal logs at error level and panics instead of exiting the process: the
// server's code does not expect Fatal to return, and a panic during Start is
// turned into an error there.
func (l *serverLogger) Fatal(msg string, tags ...tag.Tag) {
	l.log(slog.LevelError, msg, tags)
	panic(fatalError{msg: describe(msg, tags)})
}

// With returns a logger that adds tags to every record.
func (l *serverLogger) With(tags ...tag.Tag) log.Logger {
	args := make([]any, 0, len(tags))
	for _, t := range tags {
		args = append(args, attr(t))
	}
	return &serverLogger{sl: l.sl.With(args...), level: l.level}
}

func (l *serverLogger) log(lvl slog.Level, msg string, tags []tag.Tag) {
	ctx := context.Background()
	if lvl < l.level.Level() || !l.sl.Enabled(ctx, lvl) {
		return
	}
	if dropped(msg) {
		return
	}
	attrs := make([]slog.Attr, 0, len(tags))
	for _, t := range tags {
		attrs = append(attrs, attr(t))
	}
	l.sl.LogAttrs(ctx, lvl, msg, attrs...)
}

// attr converts a server tag. Errors are kept as errors: tag.ZapTag.Value
// encodes a zap field into a map and returns an arbitrary entry, which for
// errors may be the "errorVerbose" or "errorCauses" entry instead of the message.
func attr(t tag.Tag) slog.Attr {
	if zt, ok := t.(tag.ZapTag); ok {
		if err, ok := zt.Field().Interface.(error); ok {
			return slog.Any(t.Key(), err)
		}
	}
	return slog.Any(t.Key(), t.Value())
}

// describe renders msg and tags into one line for a panic value.
func describe(msg string, tags []tag.Tag) string {
	var b strings.Builder
	b.WriteString(msg)
	for _, t := range tags {
		a := attr(t)
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
	}
	return b.String()
}
