using System.Globalization;
using System.Text.Json.Nodes;
using LinuxCp.Config.Engine;
using LinuxCp.Config.Linux;
using LinuxCp.Config.Model;
using LinuxCp.ControlPlane.Pairs;
using LinuxCp.Management.Contracts;

namespace LinuxCp.Management.Api;

/// <summary>The <c>config</c> command family over the declarative engine. The API socket, REST
/// and lcpctl all come here: documents travel as documents (the request's input), never as argv.</summary>
public sealed class ConfigCommands(ConfigEngine engine)
{
    public ConfigEngine Engine => engine;

    /// <summary>The etcd source, when lcpd runs with --etcd.</summary>
    public LinuxCp.Config.Sources.EtcdSource? Etcd { get; set; }

    /// <summary>Runs a <c>config ...</c> command from <paramref name="source"/>.</summary>
    public JsonNode? Execute(CommandSpec spec, string[] rest, string? input, string source)
    {
        try
        {
            return spec.Path switch
            {
                "config get" => Get(rest),
                "config update" => Update(rest, Need(input, spec), source),
                "config delete" => Delete(rest, input, source),
                "config validate" => Validate(Need(input, spec)),
                "config retrieve" => NoArgs(spec, rest, engine.Retrieve),
                "config status" => Status(rest),
                "config diff" => Diff(rest, input, source),
                "config history" => History(rest),
                "config resync" => Txn(engine.Resync(rest.Length == 0 ? "downstream" : rest[0])),
                "config confirm" => NoArgs(spec, rest, () => new JsonObject { ["confirmed"] = engine.Confirm() }),
                "config rollback" => Rollback(rest, source),
                "config graph" => NoArgs(spec, rest, () => new JsonObject { ["dot"] = engine.Graph() }),
                _ => throw new ApiException($"command '{spec.Path}' is not implemented by this lcpd"),
            };
        }
        catch (ConfigException e)
        {
            throw new ApiException(Message(e.Errors));
        }
    }

    private static string Message(IReadOnlyList<ConfigError> errors) =>
        errors.Count == 1 ? errors[0].ToString() : $"{errors.Count} errors:\n  " + string.Join("\n  ", errors.Take(50));

    private static string Need(string? input, CommandSpec spec) =>
        input ?? throw new ApiException($"{spec.Path} needs a document (lcpctl {spec.Path} -f <file>)");

    private static JsonNode NoArgs(CommandSpec spec, string[] rest, Func<JsonNode> f)
    {
        if (rest.Length != 0)
            throw new ApiException($"unexpected argument '{rest[0]}'; usage: {spec.Usage}");
        return f();
    }

    private static (HashSet<string> Flags, Dictionary<string, string> Values, List<string> Words) Args(string[] rest, string[] flags, string[] valued)
    {
        var f = new HashSet<string>(StringComparer.Ordinal);
        var v = new Dictionary<string, string>(StringComparer.Ordinal);
        var w = new List<string>();
        for (int i = 0; i < rest.Length; i++)
        {
            if (flags.Contains(rest[i]))
                f.Add(rest[i]);
            else if (valued.Contains(rest[i]))
                v[rest[i]] = i + 1 < rest.Length ? rest[++i] : throw new ApiException($"{rest[i]} needs a value");
            else if (rest[i].StartsWith("--", StringComparison.Ordinal))
                throw new ApiException($"unknown option {rest[i]}");
            else
                w.Add(rest[i]);
        }
        return (f, v, w);
    }

    private static int Int(string s, string what, int min = 0) =>
        int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out int n) && n >= min ? n : throw new ApiException($"{what}: not a number: '{s}'");

    private JsonNode Get(string[] rest)
    {
        var (_, v, w) = Args(rest, [], ["--source"]);
        if (w.Count != 0)
            throw new ApiException($"unexpected argument '{w[0]}'");
        return DocumentWriter.Document(engine.Get(v.GetValueOrDefault("--source")));
    }

    private static (ConfigDocument, IReadOnlyDictionary<object, string>) Parse(string input) => DocumentReader.Parse(input);

    private JsonNode Update(string[] rest, string input, string source)
    {
        var (f, v, w) = Args(rest, ["--replace", "--dry-run", "--best-effort"], ["--confirm"]);
        if (w.Count != 0)
            throw new ApiException($"unexpected argument '{w[0]}'");
        var (doc, paths) = Parse(input);
        var o = new TxnOptions
        {
            Replace = f.Contains("--replace"),
            DryRun = f.Contains("--dry-run"),
            BestEffort = f.Contains("--best-effort"),
            ConfirmSeconds = v.TryGetValue("--confirm", out string? c) ? Int(c, "--confirm", 1) : 0,
            Paths = paths,
        };
        return Txn(engine.Update(source, doc, o));
    }

    private JsonNode Delete(string[] rest, string? input, string source)
    {
        var (f, _, keys) = Args(rest, ["--dry-run", "--best-effort"], []);
        var o = new TxnOptions { DryRun = f.Contains("--dry-run"), BestEffort = f.Contains("--best-effort") };
        if (input is not null)
        {
            var (doc, _) = Parse(input);
            keys.AddRange(doc.Items().Select(i => i.Key));
        }
        if (keys.Count == 0)
            throw new ApiException("config delete needs keys or a document (-f <file>)");
        return Txn(engine.Delete(source, keys, o));
    }

    private JsonNode Validate(string input)
    {
        var (doc, paths) = Parse(input);
        TxnResult r = engine.Update("validate", doc, new TxnOptions { DryRun = true, Paths = paths });
        if (!r.Ok)
            throw new ApiException(r.Errors.Count != 0 ? Message(r.Errors) : r.Error);
        return new JsonObject { ["valid"] = true, ["items"] = doc.Count, ["planned"] = r.Ops.Count };
    }

    private JsonNode Status(string[] rest)
    {
        if (rest.Length > 1)
            throw new ApiException($"unexpected argument '{rest[1]}'");
        var list = new JsonArray();
        foreach (ItemStatus s in engine.Status(rest.Length == 0 ? null : rest[0]))
            list.Add(new JsonObject
            {
                ["key"] = s.Key, ["state"] = s.StateName, ["kind"] = s.Kind, ["source"] = s.Source, ["derived"] = s.Derived,
                ["reason"] = s.Reason, ["since"] = s.Since.ToString("O", CultureInfo.InvariantCulture),
            });
        return list;
    }

    private JsonNode Diff(string[] rest, string? input, string source)
    {
        var (f, _, w) = Args(rest, ["--replace"], []);
        if (input is not null)
        {
            var (doc, _) = Parse(input);
            return engine.Diff(source, doc, f.Contains("--replace"));
        }
        if (w.Count == 0)
            return engine.Diff(Math.Max(0, engine.CurrentRevision - 1), null);
        return engine.Diff(Int(w[0], "revision"), w.Count > 1 ? Int(w[1], "revision") : null);
    }

    private JsonNode History(string[] rest)
    {
        var (f, _, w) = Args(rest, ["--details"], []);
        bool details = f.Contains("--details");
        IEnumerable<TxnRecord> list = engine.History();
        if (w.Count != 0)
        {
            long seq = Int(w[0], "seq", 1);
            list = list.Where(r => r.Seq == seq);
            details = true;
            if (!list.Any())
                throw new ApiException($"no transaction {seq} in the history");
        }
        var a = new JsonArray();
        foreach (TxnRecord r in list)
        {
            var o = new JsonObject
            {
                ["seq"] = r.Seq, ["time"] = r.Time.ToString("O", CultureInfo.InvariantCulture), ["source"] = r.Source, ["kind"] = r.Kind,
                ["outcome"] = r.Outcome, ["revision"] = r.Revision, ["items"] = r.InputItems, ["planned"] = Math.Max(r.PlannedCount, r.Planned.Count),
                ["executed"] = Math.Max(r.ExecutedCount, r.Executed.Count), ["ms"] = Math.Round(r.Ms, 2), ["error"] = r.Error,
            };
            if (details)
            {
                o["input"] = r.Input?.DeepClone();
                o["phases_ms"] = new JsonObject([.. r.Phases.Select(kv => new KeyValuePair<string, JsonNode?>(kv.Key, kv.Value))]);
                o["planned_ops"] = Ops(r.Planned);
                o["executed_ops"] = Ops(r.Executed);
            }
            a.Add(o);
        }
        return a;
    }

    private JsonNode Rollback(string[] rest, string source)
    {
        _ = source;
        var (f, v, w) = Args(rest, ["--dry-run"], ["--confirm"]);
        if (w.Count != 1)
            throw new ApiException("usage: config rollback <revision> [--confirm <s>] [--dry-run]");
        return Txn(engine.Rollback(Int(w[0], "revision", 1), new TxnOptions
        {
            DryRun = f.Contains("--dry-run"),
            ConfirmSeconds = v.TryGetValue("--confirm", out string? c) ? Int(c, "--confirm", 1) : 0,
        }));
    }

    private static JsonArray Ops(IEnumerable<OpRecord> ops) =>
        new([.. ops.Select(x => (JsonNode)new JsonObject { ["op"] = x.Op, ["key"] = x.Key, ["result"] = x.Result, ["error"] = x.Error, ["ms"] = Math.Round(x.Ms, 3) })]);

    /// <summary>A transaction's answer; refused and reverted ones are errors (exit 1) with every reason.</summary>
    public static JsonNode Txn(TxnResult r)
    {
        if (r.Outcome is "refused" or "reverted")
            throw new ApiException(r.Errors.Count > 1 ? Message(r.Errors) : r.Outcome == "reverted" ? $"transaction failed and was reverted: {r.Error}" : r.Error);
        return new JsonObject
        {
            ["ok"] = r.Ok, ["outcome"] = r.Outcome, ["revision"] = r.Revision, ["seq"] = r.Seq, ["error"] = r.Error,
            ["ops"] = Ops(r.Ops),
            ["pending"] = new JsonArray([.. r.Pending.Where(p => !p.Derived).Select(p => (JsonNode)new JsonObject { ["key"] = p.Key, ["reason"] = p.Reason })]),
        };
    }
}

/// <summary>The config layer's view of the pair manager: the same calls as lcp create / delete.</summary>
public sealed class PairControl(PairManager pairs) : IPairControl
{
    private static LcpPair Of(Pair p) => new() { Port = p.Phy.Name, HostIf = p.HostIf, Netns = p.Netns ?? "", Tun = p.Tun, Persist = p.Persist };

    public LcpPair? ByHostIf(string hostIf) => pairs.Pairs().FirstOrDefault(p => p.HostIf == hostIf) is Pair p ? Of(p) : null;

    public LcpPair? ByPort(string port) => pairs.Pairs().FirstOrDefault(p => p.Phy.Name == port) is Pair p ? Of(p) : null;

    public void Create(LcpPair pair)
    {
        try
        {
            pairs.Create(pair.Port, pair.HostIf, pair.Netns.Length == 0 ? null : pair.Netns, pair.Tun, pair.Persist, null);
        }
        catch (PairException e)
        {
            throw new LinuxException(e.Message, 22);
        }
    }

    public void Delete(string port)
    {
        try
        {
            pairs.Delete(port);
        }
        catch (PairException e)
        {
            throw new LinuxException(e.Message, 22);
        }
    }
}
