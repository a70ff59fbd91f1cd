package shhh_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"chorus/shhh"
)

type secretValuer struct{ s string }

func (v secretValuer) LogValue() slog.Value { return slog.StringValue("token=" + v.s) }

func TestHandlerRedactsEverything(t *testing.T) {
	f := newFake(20)
	secrets := map[string]string{
		"msg":    "sk-" + f.str(alnum, 48),
		"attr":   f.str(urlsafe, 40),
		"group":  f.str(alnum, 12),
		"with":   "ghp_" + f.str(alnum, 36),
		"err":    f.str(alnum, 16),
		"struct": f.str(alnum, 11),
		"valuer": f.str(urlsafe, 30),
	}
	var buf bytes.Buffer
	r := newRedactor(t, shhh.DefaultConfig())
	log := slog.New(shhh.NewHandler(slog.NewJSONHandler(&buf, nil), r)).
		With("agent", "a1", "deploy_token", secrets["with"]).
		WithGroup("req")
	log.Info("using key "+secrets["msg"],
		"auth", "Bearer "+secrets["attr"],
		slog.Group("db", "dsn", "postgres://app:"+secrets["group"]+"@db/chorus", "pool", 4),
		"err", errors.New("dial: password="+secrets["err"]),
		"cfg", struct {
			Password string `json:"password"`
		}{secrets["struct"]},
		"lazy", secretValuer{secrets["valuer"]},
	)
	out := buf.String()
	for what, s := range secrets {
		if strings.Contains(out, s) {
			t.Errorf("%s secret leaked: %s", what, out)
		}
	}
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("output is not JSON: %v: %s", err, out)
	}
	req, _ := rec["req"].(map[string]any)
	db, _ := req["db"].(map[string]any)
	cfg, _ := req["cfg"].(map[string]any)
	checks := map[string]any{
		"msg":          rec["msg"],
		"agent":        rec["agent"],
		"deploy_token": rec["deploy_token"],
		"auth":         req["auth"],
		"dsn":          db["dsn"],
		"pool":         db["pool"],
		"err":          req["err"],
		"cfg.password": cfg["password"],
		"lazy":         req["lazy"],
	}
	want := map[string]any{
		"msg":          "using key [REDACTED]",
		"agent":        "a1",
		"deploy_token": "[REDACTED]",
		"auth":         "Bearer [REDACTED]",
		"dsn":          "postgres://app:[REDACTED]@db/chorus",
		"pool":         4.0,
		"err":          "dial: password=[REDACTED]",
		"cfg.password": "[REDACTED]",
		"lazy":         "token=[REDACTED]",
	}
	for k, w := range want {
		if checks[k] != w {
			t.Errorf("%s = %#v, want %#v\n%s", k, checks[k], w, out)
		}
	}
	if n := r.Stats().Redactions; n != int64(len(secrets)) {
		t.Errorf("Stats().Redactions = %d, want %d", n, len(secrets))
	}
}

func TestHandlerEnabledFollowsNext(t *testing.T) {
	h := shhh.NewHandler(slog.NewTextHandler(&bytes.Buffer{}, &slog.HandlerOptions{Level: slog.LevelWarn}), newRedactor(t, shhh.DefaultConfig()))
	if h.Enabled(context.Background(), slog.LevelInfo) || !h.Enabled(context.Background(), slog.LevelError) {
		t.Fatal("Enabled does not follow the wrapped handler")
	}
}
