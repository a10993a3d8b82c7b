using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;

namespace LinuxCp.Cli;

/// <summary>Human layouts for results that are not a flat table (nested per-worker or
/// per-packet data). Everything else goes through <see cref="TableFormatter"/>.</summary>
internal static class Views
{
    public static string Format(string command, JsonNode? result) => command switch
    {
        "show runtime" or "clear runtime" when result is JsonArray a => Runtime(a),
        "show trace" when result is JsonArray a => Trace(a),
        "show errors" or "clear errors" when result is JsonArray a => Errors(a),
        "show dpdk" when result is JsonObject o => Dpdk(o),
        "lcp verify" when result is JsonObject o => Verify(o),
        "show ip fib summary" when result is JsonObject o => FibSummary(o),
        _ => TableFormatter.Format(result),
    };

    private static string Verify(JsonObject o)
    {
        var sb = new StringBuilder();
        bool ok = o["in_sync"]?.GetValue<bool>() == true;
        sb.Append(CultureInfo.InvariantCulture, $"{(ok ? "in sync" : "DIFFERENT")}: {o["checked"]} FIB entries checked, {o["rounds"]} round(s)\n");
        if (o["differences"] is JsonArray d && d.Count != 0)
            sb.Append(TableFormatter.Format(d));
        return sb.ToString();
    }

    private static string FibSummary(JsonObject o)
    {
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture,
            $"ipv4 {o["ipv4"]}  ipv6 {o["ipv6"]}  pending {o["pending"]}  refused {o["refused"]}  commits {o["commits"]}  fib errors {o["fib_errors"]}  grace timeouts {o["grace_timeouts"]}\n");
        sb.Append(CultureInfo.InvariantCulture, $"groups {o["groups"]}  paths {o["paths"]}  nexthop objects {o["nexthops"]}  targets {o["targets"]}");
        if (o["syncing"]?.GetValue<bool>() == true)
            sb.Append(CultureInfo.InvariantCulture, $"  (dump in progress: {o["sync_progress"]} objects applied)");
        sb.Append("\n\n");
        if (o["tables"] is JsonArray t)
            sb.Append(TableFormatter.Format(t));
        return sb.ToString();
    }

    private static string Runtime(JsonArray workers)
    {
        var sb = new StringBuilder();
        foreach (JsonNode? w in workers)
        {
            if (w is not JsonObject o)
                continue;
            sb.Append(CultureInfo.InvariantCulture,
                $"worker {o["worker"]} (lcore {o["lcore"]}, queue {o["queue"]}): {(o["running"]?.GetValue<bool>() == true ? "running" : "stopped")}, "
                + $"{o["iterations"]} iterations, longest loop gap {o["max_loop_gap_us"]} us, allocated since warm-up {o["allocated_bytes_since_warmup"]} bytes\n");
            if (o["failure"] is JsonValue f)
                sb.Append("  failed: ").Append(f.GetValue<string>()).Append('\n');
            if (o["paths"] is JsonArray paths)
            {
                var rows = new JsonArray([.. paths.Where(p => p?["calls"]?.GetValue<long>() != 0).Select(p => p!.DeepClone())]);
                foreach (string line in TableFormatter.Format(rows).Split('\n', StringSplitOptions.RemoveEmptyEntries))
                    sb.Append("  ").Append(line).Append('\n');
            }
            sb.Append('\n');
        }
        return sb.ToString();
    }

    private static string Trace(JsonArray packets)
    {
        if (packets.Count == 0)
            return "no packets traced (trace add <n> [port <port>] arms the trace)\n";
        var sb = new StringBuilder();
        foreach (JsonNode? p in packets)
        {
            if (p is not JsonObject o)
                continue;
            string reason = o["reason"] is JsonValue r ? $" ({r.GetValue<string>()})" : "";
            sb.Append(CultureInfo.InvariantCulture, $"packet {o["index"]}  +{o["time_us"]} us  {o["outcome"]?.GetValue<string>()}{reason}\n");
            if (o["steps"] is JsonArray steps)
            {
                int w = steps.Select(s => s?["step"]?.GetValue<string>().Length ?? 0).DefaultIfEmpty(0).Max();
                foreach (JsonNode? s in steps)
                    sb.Append("  ").Append((s?["step"]?.GetValue<string>() ?? "").PadRight(w)).Append("  ").Append(s?["detail"]?.GetValue<string>()).Append('\n');
            }
            sb.Append('\n');
        }
        return sb.ToString();
    }

    private static string Errors(JsonArray counters)
    {
        // Non-zero counters only, with one column per worker when there are several.
        var rows = new JsonArray();
        foreach (JsonNode? c in counters)
        {
            if (c is not JsonObject o || o["count"]?.GetValue<long>() == 0)
                continue;
            var row = new JsonObject
            {
                ["reason"] = o["reason"]?.DeepClone(),
                ["kind"] = o["kind"]?.DeepClone(),
                ["count"] = o["count"]?.DeepClone(),
            };
            if (o["per_worker"] is JsonArray per && per.Count > 1)
                for (int i = 0; i < per.Count; i++)
                    row[$"worker{i}"] = per[i]?.DeepClone();
            row["description"] = o["description"]?.DeepClone();
            rows.Add(row);
        }
        return rows.Count == 0 ? "no drops or punts\n" : TableFormatter.Format(rows);
    }

    private static string Dpdk(JsonObject o)
    {
        var sb = new StringBuilder();
        sb.Append(o["version"]?.GetValue<string>()).Append(", hugepages ")
            .Append(o["hugepages"]?.GetValue<bool>() == true ? "yes" : "no").Append('\n');
        sb.Append("EAL arguments: ").Append(string.Join(' ', (o["eal_args"] as JsonArray ?? []).Select(a => a?.GetValue<string>()))).Append("\n\n");
        sb.Append("lcores:\n").Append(Indent(TableFormatter.Format(o["lcores"]))).Append('\n');
        sb.Append("ports (each polled on queue N by worker N):\n").Append(Indent(TableFormatter.Format(o["ports"]))).Append('\n');
        sb.Append("mempools:\n").Append(Indent(TableFormatter.Format(o["mempools"])));
        return sb.ToString();
    }

    private static string Indent(string s) =>
        string.Concat(s.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => "  " + l + "\n"));
}
