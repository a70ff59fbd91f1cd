// Package selection chooses the agent for a task (SPEC section 3, step 1)
// and orders work. It is pure: no clock, no I/O, no goroutines.
//
// Score of a candidate for a requirement:
//
//	score = 0.4·role + 0.3·expertise + 0.2·availability + 0.1·performance
//
// role is 1 for an exact role match (or a task that asks for no role), 0.5
// for a partial one (one role is a word of the other: "developer" and
// "backend-developer"), else 0; expertise is the fraction of the required
// expertise the agent holds (1 when none is required); availability is
// (max_tasks − current_tasks)/max_tasks, clamped to 0..1; performance is
// the agent's success record, 0..1. Only scores above Threshold (0.5)
// qualify; Best picks the highest, ties broken by agent id so every node
// picks the same agent from the same view.
//
// Order sorts work by priority (high first), then best score (high first),
// then age (old first), then how many tasks it blocks (more first).
// PriorityKey maps a task priority to Temporal's task-queue priority key,
// so a backlog on a busy agent drains in the same order.
//
// Concurrency: functions only; safe from any goroutine.
package selection
