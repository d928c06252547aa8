#!/usr/bin/env bash
# The shell half of the reconciler GitHub Action, kept out of action.yml so it runs (and is
# tested) locally: give it the same environment variables the action sets.
#
# Usage: run.sh install | plan | apply | comment | drift-issue
#
#   install      create a virtualenv and pip-install reconciler: $INSTALL if set (`source`: the
#                repository holding this action); else the released gemini-batch-reconciler
#                with the postgres and gcs extras, the version of the action's tag ($ACTION_REF
#                vX.Y.Z) or the newest release
#   plan         reconciler plan --out $PLAN_FILE --format markdown --detailed-exitcode $ARGS;
#                the Markdown goes to $GITHUB_STEP_SUMMARY; outputs has_changes, plan_file,
#                markdown_file, exitcode
#   apply        reconciler apply [$PLAN_FILE] --auto-approve $ARGS (a stale saved plan falls back
#                to a fresh plan when ON_STALE_PLAN=replan); the log and `reconciler cost` go to
#                $GITHUB_STEP_SUMMARY; with COMMIT_STATE=true, commits the state file (and its
#                blobs/) back and pushes
#   comment      post or update one PR comment, found by <!-- reconciler-plan:$PROJECT_DIR -->
#   drift-issue  open or update one issue while the plan has changes; close it once clean
#
# Environment (all optional except where a subcommand needs one):
#   PROJECT_DIR (.)  ENDPOINT  STATE  ARGS (whitespace-separated)  PLAN_FILE
#   RECONCILER_BIN (reconciler)  RECONCILER_PYTHON (python3)  INSTALL  ACTION_REF  VENV_DIR
#   ON_STALE_PLAN (fail|replan)  COMMIT_STATE (false)  COMMIT_PATHS  COMMIT_MESSAGE  PUSH (true)
#   GITHUB_OUTPUT  GITHUB_STEP_SUMMARY  GITHUB_ENV  GITHUB_PATH  RUNNER_TEMP
#   comment/drift-issue: GH_TOKEN  GITHUB_REPOSITORY  PR_NUMBER  MARKDOWN_FILE  HAS_CHANGES
#                        GITHUB_SERVER_URL  GITHUB_RUN_ID  GITHUB_SHA  DRIFT_LABEL
# Secrets (GEMINI_API_KEY) are read by reconciler from the environment; this script never
# prints the environment and never runs with `set -x`.
# Backticks inside single-quoted printf formats are Markdown code spans, not command substitution.
# shellcheck disable=SC2016
set -euo pipefail

readonly COMMENT_LIMIT=65536  # GitHub's maximum issue/PR comment body, in characters
readonly SUMMARY_LIMIT=1000000  # a step summary may hold at most 1 MiB

PROJECT_DIR="${PROJECT_DIR:-.}"
RECONCILER_BIN="${RECONCILER_BIN:-reconciler}"
RECONCILER_PYTHON="${RECONCILER_PYTHON:-python3}"
WORK_DIR="${RUNNER_TEMP:-${TMPDIR:-/tmp}}/reconciler-action"
mkdir -p "$WORK_DIR"

log() { printf 'reconciler-action: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

# Append name=value to $GITHUB_OUTPUT (or print it, outside Actions).
set_output() {
  if [ -n "${GITHUB_OUTPUT:-}" ]; then
    printf '%s=%s\n' "$1" "$2" >>"$GITHUB_OUTPUT"
  else
    printf '%s=%s\n' "$1" "$2"
  fi
}

# Append a file to $GITHUB_STEP_SUMMARY, cut to what a summary may hold.
add_to_summary() {
  if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
    truncate_file "$1" "$SUMMARY_LIMIT" >>"$GITHUB_STEP_SUMMARY"
    printf '\n' >>"$GITHUB_STEP_SUMMARY"
  fi
}

# Print a file cut to at most $2 characters (not bytes), ending with a note when it was cut.
truncate_file() {
  "$RECONCILER_PYTHON" - "$1" "$2" <<'PY'
import sys
text = open(sys.argv[1], encoding="utf-8", errors="replace").read()
limit = int(sys.argv[2])
note = "\n\n… truncated: the full plan is in the workflow run's summary and plan artifact.\n"
if len(text) > limit:
    text = text[: limit - len(note)] + note
sys.stdout.write(text)
PY
}

# The global options, then the extra arguments, as arrays (no word-splitting surprises).
global_args() {
  GLOBAL=(--no-color -C "$PROJECT_DIR")
  if [ -n "${ENDPOINT:-}" ]; then GLOBAL+=(--endpoint "$ENDPOINT"); fi
  if [ -n "${STATE:-}" ]; then GLOBAL+=(--state "$STATE"); fi
  EXTRA=()
  if [ -n "${ARGS:-}" ]; then read -r -a EXTRA <<<"$ARGS"; fi
}

# What to pip-install by default: the release matching the action's tag, else the newest.
release_spec() {
  local ref="${ACTION_REF:-}"
  if [[ "$ref" =~ ^v([0-9]+(\.[0-9]+)*([a-z]+[0-9]+)?)$ ]]; then
    printf 'gemini-batch-reconciler[postgres,gcs]==%s' "${BASH_REMATCH[1]}"
  else
    printf 'gemini-batch-reconciler[postgres,gcs]'
  fi
}

cmd_install() {
  local venv="${VENV_DIR:-$WORK_DIR/venv}"
  local action_repo spec
  action_repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
  case "${INSTALL:-}" in
    "") spec="$(release_spec)" ;;
    source) spec="${action_repo}[postgres,gcs]" ;;
    *) spec="$INSTALL" ;;
  esac
  # A second use of the action in the same job reuses the virtualenv the first one made.
  if [ ! -x "$venv/bin/reconciler" ] || [ "$(cat "$venv/.reconciler-spec" 2>/dev/null)" != "$spec" ]; then
    "$RECONCILER_PYTHON" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --upgrade pip
    "$venv/bin/python" -m pip install --quiet "$spec"
    printf '%s' "$spec" >"$venv/.reconciler-spec"
  fi
  if [ -n "${GITHUB_PATH:-}" ]; then printf '%s\n' "$venv/bin" >>"$GITHUB_PATH"; fi
  if [ -n "${GITHUB_ENV:-}" ]; then
    printf 'RECONCILER_BIN=%s\nRECONCILER_PYTHON=%s\n' "$venv/bin/reconciler" "$venv/bin/python" >>"$GITHUB_ENV"
  fi
  "$venv/bin/reconciler" --version
}

cmd_plan() {
  global_args
  local plan_file="${PLAN_FILE:-$WORK_DIR/reconciler.plan}"
  local markdown="$WORK_DIR/plan.md"
  local errors="$WORK_DIR/plan.stderr"
  local rc=0
  mkdir -p "$(dirname "$plan_file")"
  "$RECONCILER_BIN" "${GLOBAL[@]}" plan --out "$plan_file" --format markdown \
    --detailed-exitcode "${EXTRA[@]}" >"$markdown" 2>"$errors" || rc=$?
  cat "$errors" >&2
  set_output exitcode "$rc"
  set_output markdown_file "$markdown"
  case "$rc" in
    0 | 2)
      set_output has_changes "$([ "$rc" -eq 2 ] && echo true || echo false)"
      set_output plan_file "$plan_file"
      add_to_summary "$markdown"
      cat "$markdown"
      return 0
      ;;
    *)
      # Reviewers see why the plan failed, in the summary and in the PR comment.
      {
        printf '### reconciler plan failed (`%s`)\n\n```\n' "$PROJECT_DIR"
        cat "$errors"
        printf '```\n'
      } >"$markdown"
      set_output has_changes false
      add_to_summary "$markdown"
      return "$rc"
      ;;
  esac
}

# The local state file this project uses (flags and RECONCILER_* override reconciler.yaml).
state_path() {
  "$RECONCILER_PYTHON" - "$PROJECT_DIR" "${STATE:-}" <<'PY'
import sys
from pathlib import Path
from reconciler.config import load_project
project = load_project(Path(sys.argv[1]), overrides={"state": sys.argv[2] or None})
location = project.config.state
if "://" in location:
    sys.exit(f"commit-state needs a local state file; this project's state is {location.split('://')[0]}://…")
print(project.path(location))
PY
}

commit_state() {
  local state_file top branch
  state_file="$(state_path)"
  if [ ! -f "$state_file" ]; then
    log "no state file at $state_file (nothing was applied); nothing to commit"
    set_output state_committed false
    return 0
  fi
  top="$(git -C "$(dirname "$state_file")" rev-parse --show-toplevel)"
  local paths=("$state_file")
  if [ -d "$(dirname "$state_file")/blobs" ]; then paths+=("$(dirname "$state_file")/blobs"); fi
  if [ -n "${COMMIT_PATHS:-}" ]; then
    local extra project_abs
    project_abs="$(cd "$PROJECT_DIR" && pwd)"
    read -r -a extra <<<"$COMMIT_PATHS"
    for path in "${extra[@]}"; do
      if [ -e "$project_abs/$path" ]; then paths+=("$project_abs/$path"); fi
    done
  fi
  git -C "$top" add -- "${paths[@]}"
  if git -C "$top" diff --cached --quiet -- "${paths[@]}"; then
    log "the state did not change; nothing to commit"
    set_output state_committed false
    return 0
  fi
  git -C "$top" \
    -c user.name="${GIT_BOT_NAME:-github-actions[bot]}" \
    -c user.email="${GIT_BOT_EMAIL:-41898282+github-actions[bot]@users.noreply.github.com}" \
    commit --quiet -m "${COMMIT_MESSAGE:-reconciler: record state after apply [skip ci]}" -- "${paths[@]}"
  set_output state_committed true
  set_output state_commit "$(git -C "$top" rev-parse HEAD)"
  if [ "${PUSH:-true}" != true ]; then return 0; fi
  branch="${GITHUB_REF_NAME:-$(git -C "$top" rev-parse --abbrev-ref HEAD)}"
  # Another workflow (not an apply: applies share a concurrency group) may have pushed meanwhile.
  local attempt
  for attempt in 1 2 3; do
    if git -C "$top" push --quiet origin "HEAD:refs/heads/$branch"; then return 0; fi
    log "push rejected (attempt $attempt); rebasing on origin/$branch"
    git -C "$top" pull --quiet --rebase origin "$branch"
  done
  die "could not push the state commit to $branch"
}

# Run reconciler with its stderr both shown live and kept in $LOG_FILE; sets RC.
run_logged() {
  set +e
  "$RECONCILER_BIN" "$@" 2>&1 >&3 3>&- | tee "$LOG_FILE" >&2
  RC=${PIPESTATUS[0]}
  set -e
}

cmd_apply() {
  global_args
  LOG_FILE="$WORK_DIR/apply.log"
  exec 3>&1
  local rc=0
  local plan_file="${PLAN_FILE:-}"
  if [ -n "$plan_file" ] && [ -f "$plan_file" ]; then
    log "applying the saved plan $plan_file"
    run_logged "${GLOBAL[@]}" apply "$plan_file" --auto-approve "${EXTRA[@]}"
    rc=$RC
    if [ "$rc" -ne 0 ] && [ "${ON_STALE_PLAN:-fail}" = replan ] \
      && grep -Eq '^Error: saved plan (is stale|does not match)' "$LOG_FILE"; then
      log "the saved plan is no longer current; planning and applying afresh"
      run_logged "${GLOBAL[@]}" apply --auto-approve "${EXTRA[@]}"
      rc=$RC
    fi
  else
    if [ -n "$plan_file" ]; then log "no saved plan at $plan_file; planning and applying afresh"; fi
    run_logged "${GLOBAL[@]}" apply --auto-approve "${EXTRA[@]}"
    rc=$RC
  fi
  set_output exitcode "$rc"
  {
    printf '### reconciler apply (`%s`): %s\n\n<details><summary>log</summary>\n\n```\n' \
      "$PROJECT_DIR" "$([ "$rc" -eq 0 ] && echo succeeded || echo failed)"
    cat "$LOG_FILE"
    printf '```\n\n</details>\n'
    # What the collected jobs cost, from the state (no network); left out if it cannot say.
    if "$RECONCILER_BIN" "${GLOBAL[@]}" cost >"$WORK_DIR/cost.txt" 2>/dev/null; then
      printf '\n#### Cost recorded in the state\n\n```\n'
      cat "$WORK_DIR/cost.txt"
      printf '```\n'
    fi
    # Each resource's actual cost beside the plan's estimate (status's COST column).
    if "$RECONCILER_BIN" "${GLOBAL[@]}" status >"$WORK_DIR/status.txt" 2>/dev/null; then
      printf '\n#### Estimate vs actual, per resource\n\n```\n'
      cat "$WORK_DIR/status.txt"
      printf '```\n'
    fi
  } >"$WORK_DIR/apply.md"
  add_to_summary "$WORK_DIR/apply.md"
  # Commit even after a failed apply: the state records every job that was created.
  if [ "${COMMIT_STATE:-false}" = true ]; then commit_state; fi
  return "$rc"
}

# Find the first comment/issue whose body starts with $2 among the JSON objects at API path $1.
find_by_marker() {
  gh api --paginate "$1" --jq ".[] | select(.body != null and (.body | startswith(\"$2\"))) | .number // .id" | head -n 1
}

cmd_comment() {
  : "${GITHUB_REPOSITORY:?}" "${PR_NUMBER:?needs the pull request number}" "${MARKDOWN_FILE:?}"
  local marker="<!-- reconciler-plan:$PROJECT_DIR -->"
  local body="$WORK_DIR/comment.md"
  {
    printf '%s\n' "$marker"
    cat "$MARKDOWN_FILE"
    printf '\n<sub>reconciler plan for `%s` at %s' "$PROJECT_DIR" "${GITHUB_SHA:-HEAD}"
    if [ -n "${GITHUB_RUN_ID:-}" ]; then
      printf ' · [workflow run](%s/%s/actions/runs/%s)' \
        "${GITHUB_SERVER_URL:-https://github.com}" "$GITHUB_REPOSITORY" "$GITHUB_RUN_ID"
    fi
    printf '</sub>\n'
  } >"$body.full"
  truncate_file "$body.full" "$COMMENT_LIMIT" >"$body"
  local existing
  existing="$(find_by_marker "repos/$GITHUB_REPOSITORY/issues/$PR_NUMBER/comments" "$marker")"
  if [ -n "$existing" ]; then
    gh api --method PATCH "repos/$GITHUB_REPOSITORY/issues/comments/$existing" \
      -F "body=@$body" --jq .html_url
  else
    gh api --method POST "repos/$GITHUB_REPOSITORY/issues/$PR_NUMBER/comments" \
      -F "body=@$body" --jq .html_url
  fi
}

cmd_drift_issue() {
  : "${GITHUB_REPOSITORY:?}" "${MARKDOWN_FILE:?}" "${HAS_CHANGES:?}"
  local marker="<!-- reconciler-drift:$PROJECT_DIR -->"
  local label="${DRIFT_LABEL:-reconciler-drift}"
  local body="$WORK_DIR/drift.md"
  local existing
  existing="$(find_by_marker "repos/$GITHUB_REPOSITORY/issues?state=open&labels=$label" "$marker")"
  if [ "$HAS_CHANGES" != true ]; then
    if [ -n "$existing" ]; then
      gh api --method POST "repos/$GITHUB_REPOSITORY/issues/$existing/comments" \
        -f body="The live service matches the state again (run ${GITHUB_RUN_ID:-local}); closing." >/dev/null
      gh api --method PATCH "repos/$GITHUB_REPOSITORY/issues/$existing" -f state=closed --jq .html_url
    fi
    return 0
  fi
  {
    printf '%s\n' "$marker"
    printf 'A scheduled `reconciler plan --refresh-only` found that the live jobs moved on '
    printf 'from the state. Run `reconciler apply` (or wait for the scheduled apply) to collect.\n\n'
    cat "$MARKDOWN_FILE"
  } >"$body.full"
  truncate_file "$body.full" "$COMMENT_LIMIT" >"$body"
  if [ -n "$existing" ]; then
    gh api --method PATCH "repos/$GITHUB_REPOSITORY/issues/$existing" -F "body=@$body" --jq .html_url
  else
    gh api --method POST "repos/$GITHUB_REPOSITORY/issues" \
      -f title="reconciler: drift in \`$PROJECT_DIR\`" -f "labels[]=$label" \
      -F "body=@$body" --jq .html_url
  fi
}

case "${1:-}" in
  install) cmd_install ;;
  plan) cmd_plan ;;
  apply) cmd_apply ;;
  comment) cmd_comment ;;
  drift-issue) cmd_drift_issue ;;
  *) die "usage: run.sh install|plan|apply|comment|drift-issue (got '${1:-}')" ;;
esac
