package preflight

import (
	"context"
	"fmt"
	"strings"

	"cloud.google.com/go/cloudtasks/apiv2/cloudtaskspb"
	"github.com/googleapis/gax-go/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/dsexport/dsexport/poller"
)

// Queues reads a Cloud Tasks queue: (*cloudtasks.Client).GetQueue.
type Queues interface {
	GetQueue(ctx context.Context, req *cloudtaskspb.GetQueueRequest, opts ...gax.CallOption) (*cloudtaskspb.Queue, error)
}

// QueueFix is the command creating queue (projects/P/locations/L/queues/Q).
func QueueFix(queue string) string {
	p, l, q := splitQueue(queue)
	return fmt.Sprintf("gcloud tasks queues create %s --location=%s --project=%s", q, l, p)
}

// splitQueue cuts projects/P/locations/L/queues/Q into its parts; the
// configuration checked its form.
func splitQueue(queue string) (project, location, id string) {
	parts := strings.Split(queue, "/")
	if len(parts) != 6 {
		return "PROJECT", "LOCATION", "QUEUE"
	}
	return parts[1], parts[3], parts[5]
}

// TasksCheck checks that queue exists and runs. Reading a queue needs
// cloudtasks.queues.get, which roles/cloudtasks.enqueuer (all dispatch
// needs) lacks: a refusal is a warning, not a failure.
func TasksCheck(q Queues, queue string) poller.CheckFunc {
	return poller.CheckFunc{Name: CheckQueue, Run: func(ctx context.Context) ([]poller.Check, error) {
		got, err := q.GetQueue(ctx, &cloudtaskspb.GetQueueRequest{Name: queue})
		switch status.Code(err) {
		case codes.OK:
		case codes.NotFound:
			return []poller.Check{{Name: CheckQueue, Detail: fmt.Sprintf("queue %s does not exist", queue), Fix: QueueFix(queue)}}, nil
		case codes.PermissionDenied:
			return []poller.Check{{Name: CheckQueue, OK: true, Warning: true,
				Detail: fmt.Sprintf("cannot read queue %s (cloudtasks.queues.get, in roles/cloudtasks.viewer, is denied; enqueuing needs only roles/cloudtasks.enqueuer): %s",
					queue, poller.BoundText(status.Convert(err).Message(), poller.MaxLabel))}}, nil
		default:
			return nil, fmt.Errorf("get queue %s: %w", queue, err)
		}
		p, l, id := splitQueue(queue)
		switch got.GetState() {
		case cloudtaskspb.Queue_RUNNING:
			return []poller.Check{{Name: CheckQueue, OK: true, Detail: fmt.Sprintf("queue %s exists and is running", queue)}}, nil
		case cloudtaskspb.Queue_PAUSED:
			return []poller.Check{{Name: CheckQueue, Detail: fmt.Sprintf("queue %s is paused: it keeps the poll tasks but runs none", queue),
				Fix: fmt.Sprintf("gcloud tasks queues resume %s --location=%s --project=%s", id, l, p)}}, nil
		case cloudtaskspb.Queue_DISABLED:
			return []poller.Check{{Name: CheckQueue, Detail: fmt.Sprintf("queue %s is disabled (its App Engine app is, or queue.yaml removed it)", queue)}}, nil
		}
		return []poller.Check{{Name: CheckQueue, OK: true, Warning: true, Detail: fmt.Sprintf("queue %s exists in state %s", queue, got.GetState())}}, nil
	}}
}
