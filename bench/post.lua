-- wrk script: POST the JSON body in $BENCH_BODY, as the official SDK would.
wrk.method = "POST"
wrk.body = os.getenv("BENCH_BODY")
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_CLIENT_KEY")
