def block(sa, failed, goodput, avg):
    L=[]
    p=lambda s: L.append(s)
    p("{s:{c}^{n}}".format(s=' Serving Benchmark Result ', n=50, c='='))
    if not sa: p("{:<40} {:<10}".format("Total requests:", 10))
    p("{:<40} {:<10}".format("Successful requests:", 10-failed))
    if not sa: p("{:<40} {:<10}".format("Failed requests:", failed))
    p("{:<40} {:<10.2f}".format("Benchmark duration (s):", 12.345))
    p("{:<40} {:<10}".format("Total input tokens:", 9000))
    p("{:<40} {:<10}".format("Total generated tokens:", 8765))
    p("{:<40} {:<10.2f}".format("Request throughput (req/s):", 0.7290400972))
    if goodput: p("{:<40} {:<10.2f}".format("Request goodput (req/s):", 0.405))
    p("{:<40} {:<10.2f}".format("Output token throughput (tok/s):", 710.004))
    p("{:<40} {:<10.2f}".format("Total Token throughput (tok/s):", 1439.0))
    if not sa:
        p("{:<40} {:<10.2f}".format("User throughput (tok/s):", 95.125))
        if failed:
            p("=======================!FAILED REQUESTS!=======================")
            p("Total failed requests: %d" % failed)
            p("=====================!CHECK LOG FOR ERRORS!====================")
        if avg:
            p("{s:{c}^{n}}".format(s='Avg Decoded Tokens per Iter', n=50, c='-'))
            for lab,v in [("Mean",2.5),("Median",2.4),("Std Dev",0.25),("Min",2.0),("Max",3.0),("P99",2.99)]:
                p("{:<40} {:<10.2f}".format(lab+" Avg Decoded Tokens per Iter:", v))
    stats = {"TTFT":(50.126,50.0,1.005,(99,55.555),(99.9,56.0)), "TPOT":(10.0,10.0,0.0,(99,10.5),(99.9,10.6)),
             "ITL":(10.004,9.999,0.3,(99,12.0),(99.9,13.0)), "E2EL":(1040.0,1039.5,2.5,(99,1050.0),(99.9,1051.0))}
    heads={"TTFT":"Time to First Token","TPOT":"Time per Output Token (excl. 1st token)","ITL":"Inter-token Latency","E2EL":"End-to-end Latency"}
    for m in ["TTFT","TPOT","ITL","E2EL"]:
        mean,med,std,p1,p2=stats[m]
        p("{s:{c}^{n}}".format(s=heads[m], n=50, c='-'))
        p("{:<40} {:<10.2f}".format(f"Mean {m} (ms):", mean))
        p("{:<40} {:<10.2f}".format(f"Median {m} (ms):", med))
        if not sa: p("{:<40} {:<10.2f}".format(f"Std Dev {m} (ms):", std))
        for pp,v in (p1,p2):
            w = str(int(pp)) if int(pp)==pp else str(pp)
            p("{:<40} {:<10.2f}".format(f"P{w} {m} (ms):", v))
    p("="*50)
    return "\n".join(L)+"\n"
import json
print(json.dumps({"standard": block(False,1,True,True), "sa": block(True,0,False,False)}))
