package forge

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"chorus/secret"
)

const secretToken = "tok_0123456789abcdef_secret"

func testTransport(t *testing.T, h http.HandlerFunc, logs *bytes.Buffer) *Transport {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	base, _ := url.Parse(srv.URL + "/api")
	var logger *slog.Logger
	if logs != nil {
		logger = slog.New(slog.NewTextHandler(logs, nil))
	}
	return &Transport{
		Provider: "test", Base: base, HTTP: srv.Client(), AuthScheme: "Bearer", Token: secret.New(secretToken),
		Retry: RetryPolicy{MaxAttempts: 3, Initial: time.Millisecond, Max: 5 * time.Millisecond, MaxWait: time.Second},
		RateLimited: func(resp *http.Response, _ []byte, now time.Time) (time.Duration, bool) {
			if resp.StatusCode != http.StatusTooManyRequests {
				return 0, false
			}
			return RetryAfter(resp.Header, now), true
		},
		DecodeError: func(b []byte) ErrorBody { return ErrorBody{Message: strings.TrimSpace(string(b))} },
		Logger:      logger,
	}
}

func TestTransportRetries5xxOnlyWhenAllowed(t *testing.T) {
	var calls atomic.Int32
	tr := testTransport(t, func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) < 3 {
			http.Error(w, "boom", http.StatusBadGateway)
			return
		}
		fmt.Fprint(w, `{"login":"bot"}`)
	}, nil)
	var out struct{ Login string }
	if _, err := tr.Do(context.Background(), Call{Method: http.MethodGet, Path: "user", Retry: true}, &out); err != nil || out.Login != "bot" {
		t.Fatalf("Do = %v, %+v", err, out)
	}
	if calls.Load() != 3 {
		t.Fatalf("calls = %d, want 3", calls.Load())
	}
	calls.Store(0)
	_, err := tr.Do(context.Background(), Call{Method: http.MethodPost, Path: "comments"}, nil)
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusBadGateway || calls.Load() != 1 {
		t.Fatalf("a POST that may not be resent: err %v after %d calls", err, calls.Load())
	}
}

func TestTransportRateLimit(t *testing.T) {
	var calls atomic.Int32
	tr := testTransport(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Query().Get("case") {
		case "short":
			if calls.Add(1) == 1 {
				w.Header().Set("Retry-After", "1")
				http.Error(w, "slow down", http.StatusTooManyRequests)
				return
			}
			fmt.Fprint(w, `[]`)
		case "long":
			w.Header().Set("Retry-After", "3600")
			http.Error(w, "come back in an hour", http.StatusTooManyRequests)
		}
	}, nil)
	start := time.Now()
	if _, err := tr.Do(context.Background(), Call{Method: http.MethodPost, Path: "x", Query: url.Values{"case": {"short"}}}, nil); err != nil {
		t.Fatalf("short limit: %v", err)
	}
	if d := time.Since(start); d < time.Second {
		t.Fatalf("retried after %s, before Retry-After", d)
	}
	start = time.Now()
	_, err := tr.Do(context.Background(), Call{Method: http.MethodGet, Path: "x", Query: url.Values{"case": {"long"}}, Retry: true}, nil)
	var rl *RateLimitError
	if !errors.As(err, &rl) || rl.Wait != time.Hour {
		t.Fatalf("long limit: %v", err)
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Fatalf("a wait beyond MaxWait held the call for %s", d)
	}
}

func TestTransportHonoursContextWhileWaiting(t *testing.T) {
	tr := testTransport(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "1")
		http.Error(w, "slow down", http.StatusTooManyRequests)
	}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := tr.Do(ctx, Call{Method: http.MethodGet, Path: "x", Retry: true}, nil)
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 500*time.Millisecond {
		t.Fatalf("Do = %v after %s", err, time.Since(start))
	}
}

func TestTransportNeverLeaksTheToken(t *testing.T) {
	var logs bytes.Buffer
	tr := testTransport(t, func(w http.ResponseWriter, r *http.Request) {
		// A hostile or buggy server echoing the credentials.
		http.Error(w, "bad request from "+r.Header.Get("Authorization"), http.StatusInternalServerError)
	}, &logs)
	_, err := tr.Do(context.Background(), Call{Method: http.MethodGet, Path: "x", Retry: true}, nil)
	if err == nil {
		t.Fatal("no error")
	}
	for what, text := range map[string]string{"error": err.Error(), "logs": logs.String(),
		"transport": fmt.Sprintf("%v %+v %#v %s", tr, tr, tr.Token, tr.Token)} {
		if strings.Contains(text, secretToken) {
			t.Errorf("the token appears in the %s: %s", what, text)
		}
	}
	if !strings.Contains(err.Error(), secret.Redacted) || !strings.Contains(logs.String(), "forge request retried") {
		t.Errorf("error %q / logs %q: want the scrubbed echo and the retries logged", err, logs.String())
	}
}

func TestGetAllPagination(t *testing.T) {
	const total = 7
	var srvURL string
	tr := testTransport(t, func(w http.ResponseWriter, r *http.Request) {
		page, _ := strconv.Atoi(r.URL.Query().Get("page"))
		if page == 0 {
			page = 1
		}
		switch r.URL.Path {
		case "/api/link":
			if page < 3 {
				w.Header().Set("Link", fmt.Sprintf(`<%s/api/link?page=%d>; rel="next"`, srvURL, page+1))
			}
		case "/api/count":
			w.Header().Set("X-Total-Count", strconv.Itoa(total))
		case "/api/elsewhere":
			w.Header().Set("Link", `<http://evil.example/api/link?page=2>; rel="next"`)
		}
		var items []string
		for i := (page - 1) * 3; i < min(page*3, total); i++ {
			items = append(items, strconv.Quote(strconv.Itoa(i)))
		}
		fmt.Fprintf(w, "[%s]", strings.Join(items, ","))
	}, nil)
	srvURL = tr.Base.Scheme + "://" + tr.Base.Host
	for _, path := range []string{"link", "count"} {
		got, err := GetAll[string](context.Background(), tr, Call{Method: http.MethodGet, Path: path, Query: url.Values{"page": {"1"}, "limit": {"3"}}, Retry: true}, 0)
		if err != nil || len(got) != total {
			t.Errorf("%s: GetAll = %v, %v; want %d items", path, got, err, total)
		}
	}
	if got, err := GetAll[string](context.Background(), tr, Call{Method: http.MethodGet, Path: "count", Query: url.Values{"page": {"1"}}, Retry: true}, 4); err != nil || len(got) != 4 {
		t.Errorf("limit 4: %v, %v", got, err)
	}
	if _, err := GetAll[string](context.Background(), tr, Call{Method: http.MethodGet, Path: "elsewhere", Retry: true}, 0); err == nil || !strings.Contains(err.Error(), "another host") {
		t.Errorf("a next link to another host: %v", err)
	}
}
