package coordination_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"chorus"
	"chorus/coordination"
)

func ExampleDetector_Detect() {
	d, err := coordination.NewDetector([]coordination.Rule{
		{Name: "payments", Task: []string{"checkout"}, DependsOn: []string{"payment*"}},
	})
	if err != nil {
		panic(err)
	}
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tasks := []chorus.Task{
		{Provider: "board", Repository: "acme/api", Number: 1, Title: "Define the orders API", Description: "payments included"},
		{Provider: "board", Repository: "acme/shop", Number: 1, Title: "Implement checkout"},
		{Provider: "board", Repository: "acme/api", Number: 2, Title: "Implement rate limits"}, // same repository as the API: never
	}
	for _, a := range d.Detect(tasks, at) {
		fmt.Printf("%s %.1f: %s waits for %s\n", a.Rule, a.Confidence, a.Task.TaskKey, a.DependsOn.TaskKey)
	}
	// Output:
	// api_contract 0.8: task/board/acme/shop/1 waits for task/board/acme/api/1
	// payments 0.8: task/board/acme/shop/1 waits for task/board/acme/api/1
}

func ExampleTable() {
	tb, err := coordination.NewTable(coordination.DefaultLimits())
	if err != nil {
		panic(err)
	}
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	_, err = tb.Open(coordination.OpenRequest{ID: "s1", Kind: coordination.KindDependency,
		TaskKeys: []string{"task/board/acme/api/1", "task/board/acme/web/1"}, Participants: []string{"admin", "bob", "carol"}, Owner: "admin"}, start)
	if err != nil {
		panic(err)
	}
	for i, m := range []coordination.Message{
		{From: "admin", Kind: coordination.Proposal, Text: "API first"},
		{From: "bob", Kind: coordination.Agreement},
		{From: "carol", Kind: coordination.Agreement},
	} {
		ch, err := tb.Add("s1", m, start.Add(time.Duration(i)*time.Second))
		if err != nil {
			panic(err)
		}
		fmt.Println(ch.Session.State, ch.Session.Agreements)
	}
	s, _ := tb.Get("s1")
	fmt.Println(s.Outcome)
	// Output:
	// open 0
	// open 1
	// resolved 2
	// consensus: 2 of 3 participants agreed within the last 3 messages
}

func ExamplePlanner_Plan() {
	p, err := coordination.NewPlanner(coordination.DefaultPlannerConfig()) // no models: template plans
	if err != nil {
		panic(err)
	}
	api := chorus.Task{Provider: "board", Repository: "acme/api", Number: 1, Title: "Define the user API"}
	web := chorus.Task{Provider: "board", Repository: "acme/web", Number: 1, Title: "Implement signup"}
	d, _ := coordination.NewDetector(nil)
	plan := p.Plan(context.Background(), coordination.PlanInput{Kind: coordination.KindDependency,
		Tasks: []chorus.Task{web, api}, Dependencies: d.Detect([]chorus.Task{api, web}, time.Now())})
	fmt.Println(plan.Template, plan.Order)
	fmt.Println(strings.Split(plan.Text, "\n")[0])
	// Output:
	// true [task/board/acme/api/1 task/board/acme/web/1]
	// [template plan: no model was reachable] (no model is configured)
}

func ExampleStore() {
	dir, err := os.MkdirTemp("", "coordination")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	s, err := coordination.OpenStore(dir)
	if err != nil {
		panic(err)
	}
	_, err = s.AddEscalation(coordination.Escalation{SessionID: "s1", TaskKeys: []string{"task/board/acme/api/1"},
		Reason: "no consensus after 10 messages", RequiresHuman: true, Messages: 10, EscalatedAt: time.Now()})
	if err != nil {
		panic(err)
	}
	again, err := coordination.OpenStore(dir) // as after a restart
	if err != nil {
		panic(err)
	}
	for _, e := range again.Escalations() {
		fmt.Println(e.SessionID, e.RequiresHuman, e.Reason)
	}
	// Output:
	// s1 true no consensus after 10 messages
}
