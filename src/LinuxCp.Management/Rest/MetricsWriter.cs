using System.Globalization;
using System.Text;
using DpdkSharp;
using LinuxCp.ControlPlane.Pairs;
using LinuxCp.Dataplane.Counters;
using LinuxCp.Management.Api;
using LinuxCp.Management.Observe;

namespace LinuxCp.Management.Rest;

/// <summary>Renders lcpd's state in the Prometheus text exposition format (version 0.0.4).
/// Counters are the raw monotonic values (the CLI's clear commands do not reset them);
/// names use the lcp_ prefix, base units (seconds, bytes) and _total for counters.</summary>
public static class MetricsWriter
{
    public const string ContentType = "text/plain; version=0.0.4; charset=utf-8";

    /// <summary>The REST listeners' admission counters.</summary>
    public static string RenderApi(ApiAuth a) =>
        "# HELP lcp_api_refused_total Requests refused on the TCP listener, by HTTP status (401 no/unknown credential, 403 read-only, 429 rate).\n" +
        "# TYPE lcp_api_refused_total counter\n" +
        $"lcp_api_refused_total{{status=\"401\"}} {a.Unauthenticated}\n" +
        $"lcp_api_refused_total{{status=\"403\"}} {a.Forbidden}\n" +
        $"lcp_api_refused_total{{status=\"429\"}} {a.RateLimited}\n" +
        "# HELP lcp_api_writes_total State-changing REST requests accepted (each is in the audit log).\n" +
        "# TYPE lcp_api_writes_total counter\n" +
        $"lcp_api_writes_total {a.AcceptedWrites}\n";

    public static string Render(CommandHandlers h)
    {
        var s = h.State;
        var sb = new StringBuilder(16384);
        var ports = s.Pairs.AllPorts();

        void Family(string name, string type, string help)
        {
            sb.Append("# HELP ").Append(name).Append(' ').Append(help).Append('\n');
            sb.Append("# TYPE ").Append(name).Append(' ').Append(type).Append('\n');
        }
        void Sample(string name, string labels, double value)
        {
            sb.Append(name);
            if (labels.Length != 0)
                sb.Append('{').Append(labels).Append('}');
            sb.Append(' ').Append(value.ToString("R", CultureInfo.InvariantCulture)).Append('\n');
        }

        (PortCounter C, string Name, string Help)[] portCounters =
        [
            (PortCounter.RxPackets, "lcp_port_rx_packets_total", "Packets received on a port."),
            (PortCounter.RxBytes, "lcp_port_rx_bytes_total", "Bytes received on a port."),
            (PortCounter.TxPackets, "lcp_port_tx_packets_total", "Packets sent on a port."),
            (PortCounter.TxBytes, "lcp_port_tx_bytes_total", "Bytes sent on a port."),
            (PortCounter.Drops, "lcp_port_drops_total", "Packets received on or for a port and dropped."),
            (PortCounter.Punts, "lcp_port_punts_total", "Packets received on a port and punted to its mirror."),
            (PortCounter.Forwarded, "lcp_port_forwarded_total", "Packets received on a port and forwarded by the fast path."),
            (PortCounter.TxErrors, "lcp_port_tx_errors_total", "Packets a port's TX queue refused."),
        ];
        foreach (var (c, name, help) in portCounters)
        {
            Family(name, "counter", help);
            foreach (PortInfo p in ports)
                Sample(name, PortLabels(p), s.Engine.ReadPort(p.Id, c));
        }
        Family("lcp_port_link_up", "gauge", "1 if the port's link is up.");
        foreach (PortInfo p in ports)
            Sample("lcp_port_link_up", PortLabels(p), EthPort.Link(p.Id).Up ? 1 : 0);

        Family("lcp_packets_total", "counter", "Packets punted or dropped, by reason (see lcpctl show errors).");
        for (Reason r = 0; r < Reason.Count; r++)
            Sample("lcp_packets_total", $"reason=\"{ReasonInfo.Name(r)}\",action=\"{(ReasonInfo.IsPunt(r) ? "punt" : "drop")}\"", s.Engine.ReadReason(r));

        Family("lcp_punt_policed_total", "counter", "Punted packets a punt policer dropped, by class (see lcpctl show punt policers).");
        foreach (var p in h.Punt.Show(new("show punt policers", "", ""), []).Where(p => p.Port is null))
            Sample("lcp_punt_policed_total", $"class=\"{p.Class}\"", p.Policed);
        Family("lcp_punt_passed_total", "counter", "Punted packets a punt policer let through, by class.");
        foreach (var p in h.Punt.Show(new("show punt policers", "", ""), []).Where(p => p.Port is null))
            Sample("lcp_punt_passed_total", $"class=\"{p.Class}\"", p.Passed);

        var rules = h.Classify.Rules.Show();
        Family("lcp_classify_rules", "gauge", "Classifier rules installed.");
        Sample("lcp_classify_rules", "", rules.Count);
        Family("lcp_classify_rule_packets_total", "counter", "Packets a classifier rule matched (see lcpctl show classify).");
        foreach (var r in rules)
            Sample("lcp_classify_rule_packets_total", ClassifyLabels(r.Rule), r.Packets);
        Family("lcp_classify_rule_bytes_total", "counter", "Bytes of the packets a classifier rule matched.");
        foreach (var r in rules)
            Sample("lcp_classify_rule_bytes_total", ClassifyLabels(r.Rule), r.Bytes);

        if (s.Routing is { } routing)
        {
            var fib = h.Routing.ShowFibSummary();
            Family("lcp_fib_routes", "gauge", "Routes in the dataplane FIB.");
            Sample("lcp_fib_routes", "family=\"ipv4\"", fib.Ipv4);
            Sample("lcp_fib_routes", "family=\"ipv6\"", fib.Ipv6);
            Family("lcp_fib_commits_total", "counter", "FIB publications (batches of changes made visible to the workers).");
            Sample("lcp_fib_commits_total", "", fib.Commits);
            Family("lcp_fib_errors_total", "counter", "Routes the DPDK FIB refused (table full).");
            Sample("lcp_fib_errors_total", "", fib.FibErrors);
            var ls = routing.Listeners.ToList();
            Family("lcp_netlink_resyncs_total", "counter", "Full netlink resyncs (overrun, read error or on demand).");
            Sample("lcp_netlink_resyncs_total", "", ls.Sum(l => Interlocked.Read(ref l.Resyncs)));
            Family("lcp_netlink_overruns_total", "counter", "Netlink socket overruns (ENOBUFS).");
            Sample("lcp_netlink_overruns_total", "", ls.Sum(l => Interlocked.Read(ref l.Overruns)));
            Family("lcp_netlink_malformed_total", "counter", "Netlink messages rejected as malformed.");
            Sample("lcp_netlink_malformed_total", "", ls.Sum(l => Interlocked.Read(ref l.Malformed)));
        }

        var workers = s.Engine.Workers;
        double tsc = Eal.TscHz;
        Family("lcp_worker_iterations_total", "counter", "Loop iterations of a worker.");
        foreach (var w in workers)
            Sample("lcp_worker_iterations_total", $"worker=\"{w.Index}\",lcore=\"{w.Lcore}\"", w.IterationCount);
        Family("lcp_worker_loop_gap_max_seconds", "gauge", "Longest gap between two loop iterations since start or clear runtime.");
        foreach (var w in workers)
            Sample("lcp_worker_loop_gap_max_seconds", $"worker=\"{w.Index}\",lcore=\"{w.Lcore}\"", w.MaxLoopGapCycles / tsc);
        Family("lcp_worker_allocated_bytes", "gauge", "Bytes a worker thread allocated since warm-up (should stay 0).");
        foreach (var w in workers)
            Sample("lcp_worker_allocated_bytes", $"worker=\"{w.Index}\",lcore=\"{w.Lcore}\"", w.AllocatedSinceWarmup);
        Family("lcp_path_packets_total", "counter", "Packets through each dataplane path.");
        foreach (var w in workers)
            for (RuntimePath p = 0; p < RuntimePath.Count; p++)
                Sample("lcp_path_packets_total", $"worker=\"{w.Index}\",path=\"{CommandHandlers.PathName(p)}\"", w.Counters.ReadPath(p).Packets);
        Family("lcp_path_calls_total", "counter", "Calls (bursts) of each dataplane path.");
        foreach (var w in workers)
            for (RuntimePath p = 0; p < RuntimePath.Count; p++)
                Sample("lcp_path_calls_total", $"worker=\"{w.Index}\",path=\"{CommandHandlers.PathName(p)}\"", w.Counters.ReadPath(p).Calls);

        Family("lcp_latency_seconds", "summary", "Time in the dataplane per path (rx burst to tx call), and loop gaps; sampled.");
        for (LatencyPath p = 0; p < LatencyPath.Count; p++)
        {
            HistogramSnapshot hs = h.MergedLatency(p);
            string path = CommandHandlers.LatencyName(p);
            foreach (double q in (double[])[0.5, 0.9, 0.99, 0.999])
                Sample("lcp_latency_seconds", $"path=\"{path}\",quantile=\"{q.ToString(CultureInfo.InvariantCulture)}\"", hs.Percentile(q * 100) / tsc);
            Sample("lcp_latency_seconds_sum", $"path=\"{path}\"", hs.Mean * hs.Count / tsc);
            Sample("lcp_latency_seconds_count", $"path=\"{path}\"", hs.Count);
        }

        Family("lcp_mempool_mbufs", "gauge", "Mbufs in a pool, by state.");
        Sample("lcp_mempool_mbufs", $"pool=\"{Escape(s.Pool.Name)}\",state=\"in_use\"", s.Pool.InUse);
        Sample("lcp_mempool_mbufs", $"pool=\"{Escape(s.Pool.Name)}\",state=\"available\"", s.Pool.Available);

        Family("lcp_gc_collections_total", "counter", "Garbage collections of the .NET runtime, by generation.");
        for (int g = 0; g <= 2; g++)
            Sample("lcp_gc_collections_total", $"generation=\"{g}\"", GC.CollectionCount(g));
        Family("lcp_gc_pause_seconds_total", "counter", "Time the .NET runtime paused threads for garbage collection.");
        Sample("lcp_gc_pause_seconds_total", "", GC.GetTotalPauseDuration().TotalSeconds);
        Family("lcp_gc_heap_bytes", "gauge", "Managed heap size after the last collection.");
        Sample("lcp_gc_heap_bytes", "", GC.GetGCMemoryInfo().HeapSizeBytes);
        Family("lcp_gc_allocated_bytes_total", "counter", "Bytes allocated on the managed heap since start.");
        Sample("lcp_gc_allocated_bytes_total", "", GC.GetTotalAllocatedBytes());
        Family("lcp_process_resident_memory_bytes", "gauge", "Resident set size of lcpd.");
        Sample("lcp_process_resident_memory_bytes", "", ProcFs.Memory().Rss);
        if (h.Config?.Engine is LinuxCp.Config.Engine.ConfigEngine cfg)
        {
            Family("lcp_config_items", "gauge", "Config keys (user and derived) by state.");
            var byState = cfg.Status().GroupBy(x => x.StateName).ToDictionary(g => g.Key, g => g.Count());
            foreach (string st in new[] { "CONFIGURED", "PENDING", "FAILED", "RETRYING", "INVALID" })
                Sample("lcp_config_items", $"state=\"{st}\"", byState.GetValueOrDefault(st));
            Family("lcp_config_revision", "gauge", "The current revision of the desired configuration.");
            Sample("lcp_config_revision", "", cfg.CurrentRevision);
            Family("lcp_config_drift_total", "counter", "Managed items found changed in Linux behind lcpd, and repaired.");
            Sample("lcp_config_drift_total", "result=\"found\"", cfg.DriftFound);
            Sample("lcp_config_drift_total", "result=\"repaired\"", cfg.DriftRepaired);
            if (h.Config.Etcd is { } etcd)
            {
                Family("lcp_config_etcd_connected", "gauge", "1 while the etcd watch is up.");
                Sample("lcp_config_etcd_connected", "", etcd.Connected ? 1 : 0);
                Family("lcp_config_etcd_resyncs_total", "counter", "Full reads of the etcd prefix (start, lost watch, etcd restart).");
                Sample("lcp_config_etcd_resyncs_total", "", etcd.Resyncs);
                Family("lcp_config_etcd_events_total", "counter", "Watch events applied.");
                Sample("lcp_config_etcd_events_total", "", etcd.Events);
            }
            Family("lcp_config_transactions", "gauge", "Transactions in the kept history by outcome.");
            foreach (var g in cfg.History().GroupBy(x => x.Outcome))
                Sample("lcp_config_transactions", $"outcome=\"{g.Key}\"", g.Count());
        }
        return sb.ToString();
    }

    private static string PortLabels(PortInfo p) =>
        $"port=\"{Escape(p.Name)}\",port_id=\"{p.Id}\",kind=\"{p.Kind.ToString().ToLowerInvariant()}\"";

    private static string ClassifyLabels(LinuxCp.Dataplane.Features.AclRule r) =>
        $"rule=\"{r.Id}\",port=\"{Escape(r.Port)}\",dir=\"{LinuxCp.Dataplane.Features.AclRule.DirectionName(r.Direction)}\",action=\"{LinuxCp.Dataplane.Features.AclRule.ActionName(r.Action)}\"";

    /// <summary>Label value escaping per the exposition format: backslash, quote, newline.</summary>
    public static string Escape(string v) => v.Replace("\\", "\\\\", StringComparison.Ordinal)
        .Replace("\"", "\\\"", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal);
}
