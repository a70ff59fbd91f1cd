package config_test

import (
	"fmt"

	"chorus/config"
)

func ExampleParse() {
	f, err := config.Parse([]byte(`
agent:
  id: agent-a
  expertise: [go, docker]
  max_tasks: 2
execution:
  memory: 1GiB
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(f.Agent.ID, f.Agent.Role, f.Agent.MaxTasks, f.Execution.Memory, f.Execution.Timeout)

	_, err = config.Parse([]byte("agent:\n  max_tasks: 0\n  colour: blue\n"))
	fmt.Println(err)
	// Output:
	// agent-a developer 2 1GiB 10m0s
	// config: agent.colour: unknown field (line 3)
}
