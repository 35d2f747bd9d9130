#!/usr/bin/env bash
# The research loop through the API, as a researcher runs it against `make up` (the README shows this file;
# tests/platform/test_end_to_end.py runs it). Needs curl and python3. Settings: API, EMAIL, PASSWORD, CORPUS.
set -euo pipefail
api=${API:-http://127.0.0.1:8000/api/v1}
EMAIL=${EMAIL:-researcher-$RANDOM$RANDOM@example.org}
PASSWORD=${PASSWORD:-correct horse battery staple}
CORPUS=${CORPUS:-demo_output/corpus}   # `make demo` writes four reports there
json='content-type: application/json'
j() { python3 -c "import json, sys; d = json.load(sys.stdin); print($1)"; }   # a field of the JSON answer
wait_for() {   # a run or an agent task, until it ends
  while :; do
    status=$(curl -sf -H "$auth" "$api/$1" | j 'd["status"]')
    case $status in succeeded|failed|canceled) echo "$1: $status"; return;; esac
    sleep 2
  done
}

# 0. An account (with a workspace of its own), and an access token (valid 15 minutes; POST /auth/refresh renews it)
curl -sf -X POST -H "$json" -d "{\"email\":\"$EMAIL\",\"password\":\"$PASSWORD\"}" $api/auth/register >/dev/null
T=$(curl -sf -X POST -H "$json" -d "{\"email\":\"$EMAIL\",\"password\":\"$PASSWORD\"}" $api/auth/login | j 'd["access_token"]')
auth="Authorization: Bearer $T"

# 1. Describe the project and upload documents (several files at once; the same bytes twice are one document)
P=$(curl -sf -X POST -H "$auth" -H "$json" -d '{"name":"Protests","domain_description":"Protest events in European news"}' $api/projects | j 'd["id"]')
uploads=(); for f in "$CORPUS"/*; do uploads+=(-F "files=@$f"); done
curl -sf -X POST -H "$auth" "${uploads[@]}" $api/projects/$P/documents | j 'len(d), "documents"'

# 2. The co-pilot suggests variables (a task: poll it); take its first suggestion, if it made one, and write
#    the codebook's variables by hand. One document and three variables keep the embedded model within its answer.
TASK=$(curl -sf -X POST -H "$auth" -H "$json" -d '{"documents":1,"max_variables":3}' $api/projects/$P/suggestions | j 'd["id"]')
wait_for agent-tasks/$TASK
FIRST=$(curl -sf -H "$auth" $api/agent-tasks/$TASK | j '([s["definition"]["name"] for s in (d["result"] or {}).get("suggestions", [])] + [""])[0]')
if [ -n "$FIRST" ]; then
  curl -sf -X POST -H "$auth" -H "$json" -d "{\"variables\":[\"$FIRST\"]}" $api/agent-tasks/$TASK/accept >/dev/null
fi
curl -sf -X POST -H "$auth" -H "$json" -d '{"name":"city","type":"text","description":"The city where the protest took place"}' $api/projects/$P/variables >/dev/null
curl -sf -X POST -H "$auth" -H "$json" -d '{"name":"participants","type":"integer","description":"How many people took part"}' $api/projects/$P/variables >/dev/null
curl -sf -H "$auth" $api/projects/$P/prompt-versions | j '[(v["version"], v["variables"]) for v in d["items"]]'   # each edit, a version

# 3. A sample, then what the model did: values it found that the text does not support first
R=$(curl -sf -X POST -H "$auth" -H "$json" -d '{"kind":"sample","sample_size":2,"seed":1}' $api/projects/$P/runs | j 'd["id"]')
wait_for runs/$R
curl -sf -H "$auth" "$api/runs/$R/values?status=ungrounded" | j 'd["total"], "ungrounded"'
VALUES=$(curl -sf -H "$auth" "$api/runs/$R/values?limit=500" | j '" ".join(v["id"] + ":" + v["variable"] for v in d["items"])')

# 4. Feedback on each value (editors): correct, or wrong with what it should be (checked against the variable;
#    null: it should be empty), then the review is done. A second reviewer codes the same values blind.
for item in $VALUES; do
  if [ "${item#*:}" = participants ]; then body='{"verdict":"wrong","corrected_value":3000,"note":"p. 1"}'; else body='{"verdict":"correct"}'; fi
  curl -sf -X PUT -H "$auth" -H "$json" -d "$body" $api/values/${item%%:*}/feedback >/dev/null
done
curl -sf -X POST -H "$auth" $api/runs/$R/review/done | j 'd["all_done"]'

# 5. Agreement per variable, model against reviewers (and between reviewers where values were double-coded)
curl -sf -H "$auth" $api/runs/$R/agreement | j '[(v["variable"], v["accuracy"], v["alpha"], v["passes"]) for v in d["model_vs_reviewers"]]'

# 6. The refiner: what it would cost, then a new definition of each weak variable scored on held-out documents
curl -sf -X POST -H "$auth" -H "$json" -d "{\"run_id\":\"$R\",\"seed\":1}" $api/projects/$P/refinements/estimate | j 'd["calls"], "calls"'
TASK=$(curl -sf -X POST -H "$auth" -H "$json" -d "{\"run_id\":\"$R\",\"held_out_fraction\":0.5,\"seed\":1}" $api/projects/$P/refinements | j 'd["id"]')
wait_for agent-tasks/$TASK
VERDICT=$(curl -sf -H "$auth" $api/agent-tasks/$TASK | j '(d["result"] or {}).get("verdict", d["error_code"])')
echo "refinement: $VERDICT"
if [ "$VERDICT" = offered ]; then
  curl -sf -X POST -H "$auth" -H "$json" -d '{}' $api/agent-tasks/$TASK/accept | j 'd["prompt_version"], d["diff"]["changed"]'
fi

# 7. The full run: estimated, capped, and gated on agreement (409 reliability_below_threshold while a variable is
#    under its threshold; an override's reason goes into the export's about sheet)
curl -sf -X POST -H "$auth" -H "$json" -d '{"kind":"full"}' $api/projects/$P/runs/estimate | j 'd["calls"], "calls,", d["cached_chunks"], "from the cache"'
FULL=$(curl -s -X POST -H "$auth" -H "$json" -d '{"kind":"full","max_cost_usd":5,"reliability_override":{"reason":"a walk-through"}}' $api/projects/$P/runs | j 'd["id"]')
wait_for runs/$FULL

# 8. The dataset, with the reviewers' corrections as they stand now in the __final columns
curl -sf -H "$auth" "$api/projects/$P/export?format=xlsx&run_id=$FULL" -o dataset.xlsx
curl -sf -H "$auth" "$api/projects/$P/export?format=csv&run_id=$FULL" -o dataset.csv
echo "dataset.xlsx and dataset.csv, project $P"
