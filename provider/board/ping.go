package board

import (
	"context"
	"fmt"
	"net/url"
)

// Ping checks that the board answers a read: a query of its database.
func (b *Board) Ping(ctx context.Context) error {
	var n int
	if err := b.r.QueryRowContext(ctx, `SELECT count(*) FROM (SELECT 1 FROM tasks LIMIT 1)`).Scan(&n); err != nil {
		return fmt.Errorf("ping board: %w", err)
	}
	return nil
}

// Ping checks that the board at the client's base URL answers: a list of
// at most one task, the cheapest read of the API.
func (c *Client) Ping(ctx context.Context) error {
	if err := c.do(ctx, "GET", pathTasks, url.Values{"limit": {"1"}}, nil, &listReply{}); err != nil {
		return fmt.Errorf("ping board at %s: %w", c.baseURL, err)
	}
	return nil
}
