using System.Globalization;
using System.Text;
using System.Text.Json;
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
        "show bond" when result is JsonArray a => Bonds(a),
        "doctor" when result is JsonObject o => LinuxCp.Management.Doctor.Checklist.Format(
            LinuxCp.Management.Doctor.Checklist.Parse(o)!),
        "lcp verify" when result is JsonObject o => Verify(o),
        "show ip fib summary" when result is JsonObject o => FibSummary(o),
        "config get" => LinuxCp.Config.Model.DocumentWriter.Yaml(result),
        "config update" or "config delete" or "config resync" or "config rollback" when result is JsonObject o => Txn(o),
        "config diff" when result is JsonObject o => Diff(o),
        "config graph" when result is JsonObject o => o["dot"]?.GetValue<string>() ?? "",
        "config validate" when result is JsonObject o => $"valid: {o["items"]} item(s), {o["planned"]} operation(s) would be made\n",
        "config confirm" when result is JsonObject o => $"revision {o["confirmed"]} confirmed\n",
        "config retrieve" when result is JsonObject o => Retrieve(o),
        "config history" or "config status" when result is JsonArray a => TableFormatter.Format(new JsonArray([.. a.Select(x => Brief(x, command == "config status"))])),
        "classify add rule" when result is JsonArray a => string.Concat(a.Select(x => $"rule {x?["id"]} added: {x?["rule"]}\n")),
        "classify del rule" when result is JsonObject o => $"{o["deleted"]} rule(s) deleted\n",
        "show classify" or "clear classify" when result is JsonArray a => a.Count == 0 ? "no classifier rules\n"
            : TableFormatter.Format(new JsonArray([.. a.Select(x => Without(x, "rule"))])),
        _ => TableFormatter.Format(result),
    };

    private static string Bonds(JsonArray bonds)
    {
        if (bonds.Count == 0)
            return "no bonds\n";
        var sb = new StringBuilder();
        foreach (JsonNode? b in bonds)
        {
            sb.Append(CultureInfo.InvariantCulture, $"{b?["name"]} (port {b?["port_id"]}): {b?["mode"]}, hash {b?["hash"]}, {b?["mac"]}, link {((bool?)b?["link_up"] == true ? "up" : "down")}\n");
            var rows = new JsonArray();
            foreach (JsonNode? m in b?["members"]?.AsArray() ?? [])
            {
                rows.Add((JsonNode)new JsonObject
                {
                    ["member"] = m?["name"]?.DeepClone(),
                    ["in_bond"] = m?["in_bond"]?.DeepClone(),
                    ["active"] = m?["active"]?.DeepClone(),
                    ["link_up"] = m?["link_up"]?.DeepClone(),
                    ["lacp"] = m?["selection"]?.DeepClone(),
                    ["actor"] = string.Join(",", m?["actor_state"]?.AsArray().Select(x => x?.ToString()) ?? []),
                    ["partner"] = string.Join(",", m?["partner_state"]?.AsArray().Select(x => x?.ToString()) ?? []),
                    ["rx_packets"] = m?["rx_packets"]?.DeepClone(),
                    ["tx_packets"] = m?["tx_packets"]?.DeepClone(),
                    ["removals"] = m?["removals"]?.DeepClone(),
                });
            }
            sb.Append(TableFormatter.Format(rows));
        }
        return sb.ToString();
    }

    private static JsonNode? Without(JsonNode? n, string key)
    {
        if (n?.DeepClone() is not JsonObject o)
            return n?.DeepClone();
        o.Remove(key);
        return o;
    }

    /// <summary>A row without the bulky detail fields (they stay in --json).</summary>
    private static JsonNode? Brief(JsonNode? n, bool status)
    {
        if (n is not JsonObject o)
            return n?.DeepClone();
        var c = new JsonObject();
        foreach (var (k, v) in o)
            if (k is not ("input" or "planned_ops" or "executed_ops") && !(status && k is "derived" or "kind"))
                c[k] = v?.DeepClone();
        return c;
    }

    private static string Txn(JsonObject o)
    {
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"{o["outcome"]}: revision {o["revision"]}, transaction {o["seq"]}");
        if (o["ops"] is JsonArray ops)
        {
            int done = ops.Count(x => x?["result"]?.GetValue<string>() == "ok");
            sb.Append(CultureInfo.InvariantCulture, $", {(o["outcome"]?.GetValue<string>() == "dry-run" ? ops.Count + " operation(s) planned" : done + " operation(s) made")}");
        }
        sb.Append('\n');
        if (o["error"]?.GetValue<string>() is { Length: > 0 } err)
            sb.Append("  error: ").Append(err).Append('\n');
        if (o["ops"] is JsonArray list && list.Count != 0)
        {
            // The first operations; --json has them all.
            sb.Append(TableFormatter.Format(new JsonArray([.. list.Take(40).Select(x => x?.DeepClone())])));
            if (list.Count > 40)
                sb.Append(CultureInfo.InvariantCulture, $"... and {list.Count - 40} more (--json lists them all)\n");
        }
        if (o["pending"] is JsonArray p && p.Count != 0)
        {
            sb.Append("pending:\n");
            foreach (JsonNode? x in p)
                sb.Append("  ").Append(x?["key"]).Append(": ").Append(x?["reason"]).Append('\n');
        }
        return sb.ToString();
    }

    private static string Diff(JsonObject o)
    {
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"--- {o["from"]}\n+++ {o["to"]}\n");
        foreach (JsonNode? x in o["added"]?.AsArray() ?? [])
            sb.Append("+ ").Append(x?["key"]).Append("  ").Append(x?["value"]?.ToJsonString()).Append('\n');
        foreach (JsonNode? x in o["removed"]?.AsArray() ?? [])
            sb.Append("- ").Append(x?["key"]).Append('\n');
        foreach (JsonNode? x in o["changed"]?.AsArray() ?? [])
            sb.Append("~ ").Append(x?["key"]).Append("  ").Append(x?["from"]?.ToJsonString()).Append(" -> ").Append(x?["to"]?.ToJsonString()).Append('\n');
        return sb.ToString();
    }

    private static string Retrieve(JsonObject o)
    {
        var sb = new StringBuilder();
        foreach (JsonNode? ns in o["namespaces"]?.AsArray() ?? [])
        {
            sb.Append("namespace ").Append(ns?["namespace"]).Append('\n');
            var links = new JsonArray([.. (ns?["links"]?.AsArray() ?? []).Select(l => (JsonNode)new JsonObject
            {
                ["name"] = l?["name"]?.DeepClone(), ["kind"] = l?["kind"]?.DeepClone(), ["mtu"] = l?["mtu"]?.DeepClone(), ["mac"] = l?["mac"]?.DeepClone(),
                ["up"] = l?["up"]?.DeepClone(), ["addresses"] = string.Join(' ', (l?["addresses"]?.AsArray() ?? []).Select(a => a?.GetValue<string>())),
                ["state"] = l?["state"]?.DeepClone(), ["key"] = l?["key"]?.DeepClone(),
            })]);
            sb.Append(TableFormatter.Format(links));
            if (ns?["routes"] is JsonArray r && r.Count != 0)
                sb.Append(TableFormatter.Format(r));
            sb.Append('\n');
        }
        return sb.ToString();
    }

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
            rows.Add((JsonNode)row);
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
