package board_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"chorus/provider/board"
)

func TestPing(t *testing.T) {
	ctx := context.Background()
	b, _ := openBoard(t)
	if err := b.Ping(ctx); err != nil {
		t.Fatalf("Board.Ping: %v", err)
	}
	if err := serve(t, b).Ping(ctx); err != nil {
		t.Fatalf("Client.Ping: %v", err)
	}

	// Not a board: a proxy's error page.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "bad gateway", http.StatusBadGateway)
	}))
	defer srv.Close()
	if err := board.NewClient(srv.URL, srv.Client()).Ping(ctx); err == nil || !strings.Contains(err.Error(), srv.URL) || !strings.Contains(err.Error(), "502") {
		t.Fatalf("Ping of a broken board = %v, want an error naming the URL and the status", err)
	}
	// Nobody there.
	srv.Close()
	if err := board.NewClient(srv.URL, nil).Ping(ctx); err == nil {
		t.Fatal("Ping of a closed server succeeded")
	}
	// A closed board.
	b2, _ := openBoard(t)
	b2.Close()
	if err := b2.Ping(ctx); err == nil {
		t.Fatal("Ping of a closed board succeeded")
	}
}
