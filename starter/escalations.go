package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"
)

// escalationItem mirrors one entry of a worker's GET /api/v1/escalations.
type escalationItem struct {
	SessionID     string    `json:"session_id"`
	Kind          string    `json:"kind,omitempty"`
	TaskKeys      []string  `json:"task_keys"`
	Participants  []string  `json:"participants,omitempty"`
	Reason        string    `json:"reason"`
	RequiresHuman bool      `json:"requires_human"`
	Plan          string    `json:"plan,omitempty"`
	Messages      int       `json:"messages"`
	Agreements    int       `json:"agreements"`
	OpenedAt      time.Time `json:"opened_at,omitzero"`
	EscalatedAt   time.Time `json:"escalated_at"`
	ReportedBy    string    `json:"reported_by,omitempty"`
}

func cmdEscalations(e *env, args []string) error {
	fs := e.flags("escalations", "[flags]", "Lists the coordination sessions a worker has seen escalated to humans: tasks whose\n"+
		"agents reached no consensus within 10 messages or 30 minutes. Oldest first.")
	var worker string
	fs.StringVar(&worker, "worker", e.getenvOr("CHORUS_WORKER", "http://127.0.0.1:9090"), "the worker's ops URL (env CHORUS_WORKER)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fail("escalations: unexpected argument %q", pos[0])
	}
	ctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(worker, "/")+"/api/v1/escalations", nil)
	if err != nil {
		return fail("escalations: --worker: %v", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fail("escalations: ask the worker at %s: %v", worker, oneLine(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fail("escalations: the worker at %s answered %s", worker, resp.Status)
	}
	var items []escalationItem
	if err := json.NewDecoder(resp.Body).Decode(&items); err != nil {
		return fail("escalations: the worker at %s sent a bad reply: %v", worker, err)
	}
	if items == nil {
		items = []escalationItem{}
	}
	if e.json {
		return e.printJSON(items)
	}
	if len(items) == 0 {
		fmt.Fprintln(e.stdout, "no escalations")
		return nil
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ESCALATED\tSESSION\tKIND\tMESSAGES\tTASKS\tREASON")
	for _, it := range items {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", it.EscalatedAt.Local().Format("2006-01-02 15:04:05"), it.SessionID, it.Kind,
			it.Messages, strings.Join(it.TaskKeys, ","), it.Reason)
	}
	return tw.Flush()
}
