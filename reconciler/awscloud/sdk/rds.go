package sdk

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	"github.com/aws/aws-sdk-go-v2/service/rds/types"
)

// RDS takes manual DB snapshots (reconciler.Snapshotter). Its endpoint
// follows AWS_ENDPOINT_URL_RDS or AWS_ENDPOINT_URL.
type RDS struct {
	cli *rds.Client
	// MaxPoll is the longest pause between two status checks; the first
	// come after 1s, then 2s, 4s, ... up to MaxPoll.
	MaxPoll time.Duration
	// Timeout bounds the wait for the snapshot to be available.
	Timeout time.Duration
}

// NewRDS returns an RDS snapshotter for cfg.
func NewRDS(cfg aws.Config) *RDS {
	return &RDS{cli: rds.NewFromConfig(cfg), MaxPoll: 15 * time.Second, Timeout: time.Hour}
}

// Snapshot creates the manual snapshot id of the DB instance and waits
// until it is available. A snapshot id that already exists (a retry of the
// same deploy) is waited for, not created again: it is the backup point
// from before the first attempt. A snapshot that ends in any status but
// available, or that is not available within Timeout, is an error.
func (r *RDS) Snapshot(ctx context.Context, instance, id string) error {
	_, err := r.cli.CreateDBSnapshot(ctx, &rds.CreateDBSnapshotInput{
		DBInstanceIdentifier: aws.String(instance), DBSnapshotIdentifier: aws.String(id),
		Tags: []types.Tag{{Key: aws.String("created-by"), Value: aws.String("reconciler")}},
	})
	var exists *types.DBSnapshotAlreadyExistsFault
	if err != nil && !errors.As(err, &exists) {
		return fmt.Errorf("create RDS snapshot %s of %s: %w", id, instance, err)
	}
	ctx, cancel := context.WithTimeout(ctx, r.Timeout)
	defer cancel()
	pause := time.Second
	for {
		out, err := r.cli.DescribeDBSnapshots(ctx, &rds.DescribeDBSnapshotsInput{DBSnapshotIdentifier: aws.String(id)})
		if err != nil {
			return fmt.Errorf("wait for RDS snapshot %s: %w", id, err)
		}
		status := ""
		if len(out.DBSnapshots) > 0 {
			status = aws.ToString(out.DBSnapshots[0].Status)
		}
		switch status {
		case "available":
			return nil
		case "creating", "pending", "":
		default:
			return fmt.Errorf("RDS snapshot %s of %s is %q, not available", id, instance, status)
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("RDS snapshot %s of %s not available within %s (last status %q): %w", id, instance, r.Timeout, status, ctx.Err())
		case <-t.C:
		}
		pause = min(2*pause, r.MaxPoll)
	}
}
