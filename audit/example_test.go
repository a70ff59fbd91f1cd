package audit_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"log"
	"os"

	"chorus/audit"
)

func Example() {
	dataDir, err := os.MkdirTemp("", "chorus-audit-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dataDir)

	key, err := audit.LoadOrCreateKey(audit.KeyPath(dataDir))
	if err != nil {
		log.Fatal(err)
	}
	l, err := audit.Open(audit.LogPath(dataDir), key, "agent-1")
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	if _, err := l.Append(ctx, audit.TypeTaskClaimed, map[string]string{"task": "task/board/demo/1"}); err != nil {
		log.Fatal(err)
	}
	if _, err := l.Append(ctx, audit.TypeTaskCompleted, map[string]string{"task": "task/board/demo/1"}); err != nil {
		log.Fatal(err)
	}
	if err := l.Close(); err != nil {
		log.Fatal(err)
	}

	r, err := audit.Verify(audit.LogPath(dataDir), key.Public().(ed25519.PublicKey))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("valid:", r.Valid, "entries:", r.Entries)

	done, err := audit.Query(audit.LogPath(dataDir), audit.Filter{Type: audit.TypeTaskCompleted})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(done[0].Index, done[0].Type, string(done[0].Data))
	// Output:
	// valid: true entries: 2
	// 2 task_completed {"task":"task/board/demo/1"}
}
