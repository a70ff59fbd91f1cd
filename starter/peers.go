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

// peersOutput mirrors a worker's GET /api/v1/peers.
type peersOutput struct {
	Self struct {
		AgentID string   `json:"agent_id,omitempty"`
		PeerID  string   `json:"peer_id"`
		Addrs   []string `json:"addrs"`
	} `json:"self"`
	Peers []struct {
		AgentID      string    `json:"agent_id"`
		PeerID       string    `json:"peer_id"`
		Role         string    `json:"role"`
		Expertise    []string  `json:"expertise"`
		CurrentTasks int       `json:"current_tasks"`
		MaxTasks     int       `json:"max_tasks"`
		Status       string    `json:"status"`
		LastSeen     time.Time `json:"last_seen"`
	} `json:"peers"`
}

func cmdPeers(e *env, args []string) error {
	fs := e.flags("peers", "[flags]", "Lists the gossip peers a worker knows: agent id, peer id, role, expertise,\ncurrent/max tasks, status and when it was last heard from.")
	var worker string
	fs.StringVar(&worker, "worker", e.getenvOr("CHORUS_WORKER", "http://127.0.0.1:9090"), "the worker's ops URL (env CHORUS_WORKER)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fail("peers: unexpected argument %q", pos[0])
	}
	ctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(worker, "/")+"/api/v1/peers", nil)
	if err != nil {
		return fail("peers: --worker: %v", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fail("peers: ask the worker at %s: %v", worker, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fail("peers: the worker at %s answered %s", worker, resp.Status)
	}
	var out peersOutput
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return fail("peers: the worker at %s sent a bad reply: %v", worker, err)
	}
	if e.json {
		return e.printJSON(out)
	}
	fmt.Fprintf(e.stdout, "this node: %s %s\n", out.Self.AgentID, out.Self.PeerID)
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "AGENT\tROLE\tTASKS\tSTATUS\tLAST SEEN\tEXPERTISE\tPEER")
	for _, p := range out.Peers {
		fmt.Fprintf(tw, "%s\t%s\t%d/%d\t%s\t%s\t%s\t%s\n", p.AgentID, p.Role, p.CurrentTasks, p.MaxTasks, p.Status,
			p.LastSeen.Local().Format("15:04:05"), strings.Join(p.Expertise, ","), p.PeerID)
	}
	return tw.Flush()
}
