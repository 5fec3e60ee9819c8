#!/usr/bin/env bash
# Deploys dsexport to Cloud Run with everything it needs: two service
# accounts, their roles, the Cloud Tasks poll queue, the database of
# dsexport's own records and its indexes, the service (not callable
# anonymously), and the Cloud Scheduler jobs. Run it from the repository
# root with the gcloud of someone who owns the project:
#
#   PROJECT=my-app REGION=us-central1 BUCKET=my-app-backups \
#   SLACK_CHANNEL='#backups' OPERATORS=you@example.com deploy/cloudrun.sh
#
# That exports PROJECT's (default) database daily (SCHEDULE). With a targets
# file instead (README: "Targets"), name it in CONFIG, a path inside the
# repository; BUCKET is then optional (only it gets the IAM binding below):
#
#   PROJECT=my-app REGION=us-central1 CONFIG=targets.yaml \
#   SLACK_CHANNEL='#backups' OPERATORS=you@example.com deploy/cloudrun.sh
#
# One Cloud Scheduler job is made per target with an export schedule, from
# `dsexport cron-yaml --scheduler` (run with $DSEXPORT, `go run
# ./cmd/dsexport` unless set to a built binary).
#
# Before the first run, put the Slack bot token in Secret Manager:
#   printf %s "$TOKEN" | gcloud secrets create dsexport-slack-token --data-file=- --project=$PROJECT
# It is safe to run again: existing resources are kept or updated.
set -euo pipefail
: "${PROJECT:?set PROJECT}" "${REGION:?set REGION}" "${SLACK_CHANNEL:?set SLACK_CHANNEL}"
CONFIG=${CONFIG:-}
if [ -z "$CONFIG" ]; then
  : "${BUCKET:?set BUCKET (or CONFIG, a targets file)}"
fi
BUCKET=${BUCKET:-}
OPERATORS=${OPERATORS:-}
SERVICE=${SERVICE:-dsexport}
QUEUE=${QUEUE:-dsexport-poll}
SCHEDULE=${SCHEDULE:-0 3 * * *}
TIME_ZONE=${TIME_ZONE:-UTC}
# dsexport's records live in a database of their own in PROJECT, never in one
# it exports (serve refuses that). Its location is a Firestore location:
# a region such as us-central1, or a multi-region such as nam5.
STORE_DATABASE=${STORE_DATABASE:-dsexport}
STORE_LOCATION=${STORE_LOCATION:-$REGION}
DSEXPORT=${DSEXPORT:-go run ./cmd/dsexport}
g() { gcloud --project="$PROJECT" --quiet "$@"; }

# The targets' schedules, read before anything is changed: a mistake in the
# file stops the script here, naming its line and field.
scheduled=""
if [ -n "$CONFIG" ]; then
  scheduled=$($DSEXPORT cron-yaml --scheduler --config="$CONFIG")
fi

number=$(g projects describe "$PROJECT" --format='value(projectNumber)')
runtime_sa="$SERVICE-run@$PROJECT.iam.gserviceaccount.com"   # what the service runs as
invoker_sa="$SERVICE-invoker@$PROJECT.iam.gserviceaccount.com" # what Scheduler and Tasks call it as
# Firestore in Datastore mode writes exports as the Firestore service agent.
datastore_agent="service-$number@gcp-sa-firestore.iam.gserviceaccount.com"

g services enable run.googleapis.com cloudtasks.googleapis.com cloudscheduler.googleapis.com \
  datastore.googleapis.com firestore.googleapis.com secretmanager.googleapis.com \
  cloudbuild.googleapis.com artifactregistry.googleapis.com
# The service agent must exist before the bucket can name it.
g beta services identity create --service=firestore.googleapis.com >/dev/null

for sa in "$SERVICE-run" "$SERVICE-invoker"; do
  g iam service-accounts describe "$sa@$PROJECT.iam.gserviceaccount.com" >/dev/null 2>&1 ||
    g iam service-accounts create "$sa" --display-name="dsexport ($sa)"
done

# The service starts and reads exports, keeps its records, enqueues poll
# tasks, and reads the managed backups and backup schedules it watches.
for role in roles/datastore.importExportAdmin roles/datastore.user roles/cloudtasks.enqueuer \
  roles/datastore.backupsViewer roles/datastore.backupSchedulesViewer; do
  g projects add-iam-policy-binding "$PROJECT" --member="serviceAccount:$runtime_sa" --role="$role" --condition=None >/dev/null
done
# Creating a task that carries an ID token of the invoker account needs actAs on it.
g iam service-accounts add-iam-policy-binding "$invoker_sa" \
  --member="serviceAccount:$runtime_sa" --role=roles/iam.serviceAccountUser >/dev/null
g secrets add-iam-policy-binding dsexport-slack-token \
  --member="serviceAccount:$runtime_sa" --role=roles/secretmanager.secretAccessor >/dev/null
# The Datastore service agent writes the export files.
if [ -n "$BUCKET" ]; then
  g storage buckets add-iam-policy-binding "gs://$BUCKET" \
    --member="serviceAccount:$datastore_agent" --role=roles/storage.objectAdmin >/dev/null
fi
if [ -n "$CONFIG" ]; then
  echo "note: each target's project needs $runtime_sa granted roles/datastore.importExportAdmin (exports)"
  echo "      and roles/datastore.backupsViewer and roles/datastore.backupSchedulesViewer (backups:), and its Firestore service agent objectAdmin on the"
  echo "      target's bucket; this script grants them in $PROJECT${BUCKET:+ and on gs://$BUCKET} only (README: IAM)."
fi

# The store: a Datastore-mode database of its own, and the composite indexes
# its queries need (index.yaml at the repository root).
if [ "$STORE_DATABASE" != "(default)" ] &&
  ! g firestore databases describe --database="$STORE_DATABASE" >/dev/null 2>&1; then
  g firestore databases create --database="$STORE_DATABASE" --type=datastore-mode --location="$STORE_LOCATION"
fi
g datastore indexes create index.yaml --database="$STORE_DATABASE"

# The poll queue, with the retry policy of queue.yaml.
if ! g tasks queues describe "$QUEUE" --location="$REGION" >/dev/null 2>&1; then
  g tasks queues create "$QUEUE" --location="$REGION"
fi
g tasks queues update "$QUEUE" --location="$REGION" --max-attempts=10 --min-backoff=10s \
  --max-backoff=3600s --max-doublings=3 --max-concurrent-dispatches=20 --max-dispatches-per-second=1

# The service. --timeout=1800 lets a poll request run its 25-minute budget
# (DSEXPORT_POLL_BUDGET) and hand over; nothing runs after a response.
invokers="$invoker_sa${OPERATORS:+,$OPERATORS}"
# Cloud Run does not set GOOGLE_CLOUD_PROJECT, which names the store's project.
env="GOOGLE_CLOUD_PROJECT=$PROJECT,DSEXPORT_STORE_DATABASE=$STORE_DATABASE,DSEXPORT_TASKS_QUEUE=projects/$PROJECT/locations/$REGION/queues/$QUEUE"
if [ -n "$CONFIG" ]; then
  # --source uploads the repository and buildpacks keep it in /workspace, so
  # the file is there beside the binary. The file's store: wins over
  # DSEXPORT_STORE_DATABASE: leave it out, or name STORE_DATABASE there.
  env="$env,DSEXPORT_CONFIG=/workspace/$CONFIG"
else
  env="$env,DSEXPORT_OUTPUT_PREFIX=gs://$BUCKET/datastore"
fi
env="$env,DSEXPORT_TASKS_SERVICE_ACCOUNT=$invoker_sa,SLACK_CHANNEL=$SLACK_CHANNEL"
env="$env,DSEXPORT_SLACK_TOKEN_SECRET=projects/$PROJECT/secrets/dsexport-slack-token/versions/latest"
# Cloud Run checks the ID token of every request (--no-allow-unauthenticated)
# and then removes its signature; DSEXPORT_CLOUD_RUN_IAM lets dsexport accept
# such tokens after checking their claims.
env="$env,DSEXPORT_CLOUD_RUN_IAM=true,DSEXPORT_TIMEZONE=$TIME_ZONE"
# The service's own URL is the tasks' target and the audience of every ID
# token. It is known once the service exists; a first deploy uses a
# placeholder and is updated right after.
url=$(g run services describe "$SERVICE" --region="$REGION" --format='value(status.url)' 2>/dev/null || true)
g run deploy "$SERVICE" --source . --region="$REGION" --no-allow-unauthenticated \
  --service-account="$runtime_sa" --timeout=1800 --max-instances=3 --memory=256Mi \
  --set-build-env-vars=GOOGLE_BUILDABLE=./cmd/dsexport \
  --set-env-vars="^@^${env//,/@}@DSEXPORT_INVOKERS=$invokers@DSEXPORT_AUDIENCE=${url:-https://pending.invalid}@DSEXPORT_TASKS_URL=${url:-https://pending.invalid}"
if [ -z "$url" ]; then
  url=$(g run services describe "$SERVICE" --region="$REGION" --format='value(status.url)')
  g run services update "$SERVICE" --region="$REGION" \
    --update-env-vars="DSEXPORT_AUDIENCE=$url,DSEXPORT_TASKS_URL=$url"
fi
g run services add-iam-policy-binding "$SERVICE" --region="$REGION" \
  --member="serviceAccount:$invoker_sa" --role=roles/run.invoker >/dev/null
for op in ${OPERATORS//,/ }; do
  g run services add-iam-policy-binding "$SERVICE" --region="$REGION" --member="user:$op" --role=roles/run.invoker >/dev/null
  g iam service-accounts add-iam-policy-binding "$invoker_sa" --member="user:$op" \
    --role=roles/iam.serviceAccountTokenCreator >/dev/null
done

schedule_job() { # NAME ARGS...: create the job, or update it when it exists
  local name=$1
  shift
  if g scheduler jobs describe "$name" --location="$REGION" >/dev/null 2>&1; then
    g scheduler jobs update http "$name" "$@"
  else
    g scheduler jobs create http "$name" "$@"
  fi
}
export_job() { # NAME UNIX-CRON PATH: an export job, retried like cron.yaml's
  schedule_job "$1" --location="$REGION" --schedule="$2" --time-zone="$TIME_ZONE" --uri="$url$3" \
    --http-method=GET --oidc-service-account-email="$invoker_sa" --oidc-token-audience="$url" \
    --attempt-deadline=120s --max-retry-attempts=3 --min-backoff=60s --max-doublings=2
}
# The exports: one job per scheduled target, named $SERVICE-export-NAME; with
# no targets file, the one daily export of the variables' target.
wanted=" "
if [ -n "$CONFIG" ]; then
  while IFS=$'\t' read -r name cron path; do
    [ -n "$name" ] || continue
    export_job "$SERVICE-export-$name" "$cron" "$path"
    wanted="$wanted$SERVICE-export-$name "
  done <<<"$scheduled"
else
  export_job "$SERVICE-daily" "$SCHEDULE" /cron/export
  wanted="$wanted$SERVICE-daily "
fi
# Export jobs of targets no longer scheduled are left for you to delete.
for old in $(g scheduler jobs list --location="$REGION" --format='value(name.basename())'); do
  case "$old" in
  "$SERVICE-daily" | "$SERVICE-export-"*)
    if [[ "$wanted" != *" $old "* ]]; then
      echo "job $old exports no configured target; delete it with:"
      echo "  gcloud scheduler jobs delete $old --location=$REGION --project=$PROJECT"
    fi
    ;;
  esac
done
# The sweep: resumes polls whose instance vanished, retries pending reports,
# raises the staleness alarm.
sweep=(--location="$REGION" --schedule="*/10 * * * *" --time-zone="$TIME_ZONE" --uri="$url/cron/sweep"
  --http-method=GET --oidc-service-account-email="$invoker_sa" --oidc-token-audience="$url"
  --attempt-deadline=300s)
schedule_job "$SERVICE-sweep" "${sweep[@]}"

echo "dsexport is at $url"
echo "trigger an export by hand (with a targets file, send {\"target\": \"NAME\"}):"
echo "  curl -X POST -H \"Authorization: Bearer \$(gcloud auth print-identity-token --impersonate-service-account=$invoker_sa --audiences=$url --include-email)\" $url/export"
