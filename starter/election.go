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

// electionOutput mirrors a worker's GET /api/v1/election (election.Status).
type electionOutput struct {
	NodeID        string     `json:"node_id"`
	Admin         string     `json:"admin"`
	Term          uint64     `json:"term"`
	Leading       bool       `json:"leading"`
	Role          string     `json:"role"`
	Running       bool       `json:"running"`
	AdminScore    float64    `json:"admin_score,omitempty"`
	LastHeartbeat *time.Time `json:"last_heartbeat,omitempty"`
	StableUntil   *time.Time `json:"stable_until,omitempty"`
	Election      *struct {
		Term       uint64 `json:"term"`
		Trigger    string `json:"trigger"`
		Voted      string `json:"voted,omitempty"`
		Candidates int    `json:"candidates"`
		Votes      int    `json:"votes"`
	} `json:"election,omitempty"`
	LastTrigger string          `json:"last_trigger,omitempty"`
	Members     int             `json:"members"`
	Live        int             `json:"live"`
	Quorum      int             `json:"quorum"`
	Heartbeat   string          `json:"heartbeat"`
	Timeout     string          `json:"timeout"`
	Scores      []electionScore `json:"scores"`
}

type electionScore struct {
	NodeID     string  `json:"node_id"`
	Score      float64 `json:"score"`
	Components struct {
		Uptime       float64 `json:"uptime"`
		Capabilities float64 `json:"capabilities"`
		Resources    float64 `json:"resources"`
		Network      float64 `json:"network"`
		Experience   float64 `json:"experience"`
	} `json:"components"`
	Term  uint64    `json:"term,omitempty"`
	Seen  time.Time `json:"seen"`
	Self  bool      `json:"self,omitempty"`
	Admin bool      `json:"admin,omitempty"`
}

const electionUsage = `Usage: starter election status [--worker URL] [--json]
       starter election trigger [--worker URL]

status   the admin a worker knows, its term (the fencing token of its
         actions), the election members and every candidate's score
trigger  ask for a manual election now; refused within the stability
         window (30 s after the admin took its term) and while one runs`

func cmdElection(e *env, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintln(e.stderr, electionUsage)
		if len(args) == 0 {
			return fail("election: status or trigger?")
		}
		return nil
	}
	switch args[0] {
	case "status":
		return electionStatus(e, args[1:])
	case "trigger":
		return electionTrigger(e, args[1:])
	}
	return fail("election: unknown subcommand %q: want status or trigger", args[0])
}

func (e *env) workerFlag(name, help string, args []string) (string, error) {
	fs := e.flags("election "+name, "[--worker URL]", help)
	var worker string
	fs.StringVar(&worker, "worker", e.getenvOr("CHORUS_WORKER", "http://127.0.0.1:9090"), "the worker's ops URL (env CHORUS_WORKER)")
	pos, err := parse(fs, args)
	if err != nil {
		return "", err
	}
	if len(pos) > 0 {
		return "", fail("election %s: unexpected argument %q", name, pos[0])
	}
	return strings.TrimRight(worker, "/"), nil
}

// callWorker sends one request to the worker's election API and decodes a
// JSON reply into out; a reply with an error body becomes that error.
func (e *env) callWorker(what, method, url string, okCode int, out any) error {
	ctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		return fail("%s: --worker: %v", what, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fail("%s: ask the worker at %s: %v", what, url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != okCode {
		var reply struct {
			Error string `json:"error"`
		}
		if json.NewDecoder(resp.Body).Decode(&reply) == nil && reply.Error != "" {
			return fail("%s: %s", what, reply.Error)
		}
		return fail("%s: the worker at %s answered %s", what, url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fail("%s: the worker at %s sent a bad reply: %v", what, url, err)
	}
	return nil
}

func electionStatus(e *env, args []string) error {
	worker, err := e.workerFlag("status", "Shows the admin the worker knows, its term, the election's members and the\ncandidates' scores (uptime 0.30, capabilities 0.20, resources 0.20,\nnetwork 0.15, experience 0.15).", args)
	if err != nil {
		return err
	}
	var out electionOutput
	if err := e.callWorker("election status", http.MethodGet, worker+"/api/v1/election", http.StatusOK, &out); err != nil {
		return err
	}
	if e.json {
		return e.printJSON(out)
	}
	printElection(e, out)
	return nil
}

func printElection(e *env, out electionOutput) {
	switch {
	case out.Admin == "" && out.Election != nil:
		fmt.Fprintf(e.stdout, "admin:     none (election for term %d running, trigger %s)\n", out.Election.Term, out.Election.Trigger)
	case out.Admin == "":
		fmt.Fprintf(e.stdout, "admin:     none (term %d)\n", out.Term)
	default:
		fmt.Fprintf(e.stdout, "admin:     %s  term %d  score %.3f\n", out.Admin, out.Term, out.AdminScore)
	}
	self := out.Role
	if out.LastHeartbeat != nil && !out.Leading {
		self += fmt.Sprintf(", last heartbeat %s ago", time.Since(*out.LastHeartbeat).Round(100*time.Millisecond))
	}
	fmt.Fprintf(e.stdout, "this node: %s (%s)\n", out.NodeID, self)
	fmt.Fprintf(e.stdout, "members:   %d, %d live, quorum %d; heartbeat %s, timeout %s\n", out.Members, out.Live, out.Quorum, out.Heartbeat, out.Timeout)
	if out.StableUntil != nil {
		if left := time.Until(*out.StableUntil); left > 0 {
			fmt.Fprintf(e.stdout, "stable:    no manual election for %s\n", left.Round(time.Second))
		}
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tSCORE\tUPTIME\tCAPAB\tRESOURCES\tNETWORK\tEXPERIENCE\t")
	for _, s := range out.Scores {
		mark := ""
		if s.Self {
			mark += " (this node)"
		}
		if s.Admin {
			mark += " (admin)"
		}
		c := s.Components
		fmt.Fprintf(tw, "%s%s\t%.3f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t\n", s.NodeID, mark, s.Score, c.Uptime, c.Capabilities, c.Resources, c.Network, c.Experience)
	}
	tw.Flush()
}

func electionTrigger(e *env, args []string) error {
	worker, err := e.workerFlag("trigger", "Asks the worker to start a manual election now. The best-scored node wins.\nRefused within the stability window and while an election runs.", args)
	if err != nil {
		return err
	}
	var out electionOutput
	if err := e.callWorker("election trigger", http.MethodPost, worker+"/api/v1/election/trigger", http.StatusAccepted, &out); err != nil {
		return err
	}
	if e.json {
		return e.printJSON(out)
	}
	if out.Election != nil {
		fmt.Fprintf(e.stdout, "election for term %d started on %s (%s)\n", out.Election.Term, out.NodeID, out.Election.Trigger)
	} else {
		fmt.Fprintf(e.stdout, "election started on %s; admin now %s, term %d\n", out.NodeID, out.Admin, out.Term)
	}
	return nil
}
