using System.Globalization;
using System.Text.Json.Nodes;
using LinuxCp.Config.Model;
using Microsoft.Extensions.Logging;

namespace LinuxCp.Config.Engine;

// Persistence: the desired state, what is applied (with what each item saved to undo itself)
// and the revisions, in one JSON file written atomically after every commit.
public sealed partial class ConfigEngine
{
    public const string StateFileName = "config-state.json";

    private string? StatePath => _opts.StateDirectory is null ? null : Path.Combine(_opts.StateDirectory, StateFileName);

    private static void WriteEntry(System.Text.Json.Utf8JsonWriter w, string source, ConfigItem i, JsonObject? saved = null)
    {
        w.WriteStartObject();
        w.WriteString("source", source);
        w.WriteString("key", i.Key);
        w.WriteString("kind", i.Kind.ToString());
        w.WritePropertyName("value");
        w.WriteRawValue(DocumentWriter.Canonical(i.Value), skipInputValidation: true);
        if (saved is not null)
        {
            w.WritePropertyName("saved");
            saved.WriteTo(w);
        }
        w.WriteEndObject();
    }

    private static void WriteFile(string path, Action<System.Text.Json.Utf8JsonWriter> body)
    {
        string tmp = path + ".tmp";
        using (var f = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16))
        using (var w = new System.Text.Json.Utf8JsonWriter(f))
        {
            body(w);
            w.Flush(); // into the page cache: it survives lcpd, not the machine losing power
            f.Flush(flushToDisk: false);
        }
        File.SetUnixFileMode(tmp, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        File.Move(tmp, path, overwrite: true);
    }

    private string RevisionPath(int n) => Path.Combine(_opts.StateDirectory!, $"revision-{n}.json");

    /// <summary>Writes the state file: the desired state, what is applied, the revision numbers
    /// kept. Each revision's items are a file of their own, written once when it is made.</summary>
    private void Save()
    {
        if (StatePath is not string path || (_desired.Count == 0 && _applied.Count == 0 && _revisions.Count == 0 && !File.Exists(path)))
            return;
        try
        {
            string dir = Path.GetDirectoryName(path)!;
            Directory.CreateDirectory(dir);
            foreach (Revision r in _revisions)
            {
                string rp = RevisionPath(r.Number);
                if (File.Exists(rp))
                    continue;
                WriteFile(rp, w =>
                {
                    w.WriteStartObject();
                    w.WriteNumber("number", r.Number);
                    w.WriteString("time", r.Time.ToString("O", CultureInfo.InvariantCulture));
                    w.WriteString("source", r.Source);
                    w.WriteString("kind", r.Kind);
                    w.WriteStartArray("items");
                    foreach (var (src, item) in r.Items)
                        WriteEntry(w, src, item);
                    w.WriteEndArray();
                    w.WriteEndObject();
                });
            }
            WriteFile(path, w =>
            {
                w.WriteStartObject();
                w.WriteNumber("version", 2);
                w.WriteNumber("revision", _revision);
                w.WriteStartArray("desired");
                foreach (var (src, item) in _desired.Values)
                    WriteEntry(w, src, item);
                w.WriteEndArray();
                w.WriteStartArray("applied");
                foreach (Applied a in _applied.Values)
                    WriteEntry(w, "", a.Item, a.Saved);
                w.WriteEndArray();
                w.WriteStartArray("revisions");
                foreach (Revision r in _revisions)
                    w.WriteNumberValue(r.Number);
                w.WriteEndArray();
                w.WriteEndObject();
            });
            // Revisions no longer kept.
            foreach (string f in Directory.GetFiles(dir, "revision-*.json"))
                if (int.TryParse(Path.GetFileNameWithoutExtension(f)["revision-".Length..], NumberStyles.None, CultureInfo.InvariantCulture, out int n)
                    && !_revisions.Any(r => r.Number == n))
                    File.Delete(f);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            LogSaveFailed(_log, path, e.Message);
        }
    }

    private static ConfigItem ReadEntry(JsonNode e)
    {
        string key = e["key"]!.GetValue<string>();
        var kind = Enum.Parse<ItemKind>(e["kind"]!.GetValue<string>());
        JsonNode v = e["value"]!;
        return kind switch
        {
            ItemKind.Address => ConfigItem.Of(new InterfaceAddress(v["interface"]!.GetValue<string>(), v["address"]!.GetValue<string>())),
            ItemKind.AdminState => ConfigItem.Of(new InterfaceAdmin(v["interface"]!.GetValue<string>(), v["enabled"]!.GetValue<bool>())),
            ItemKind.VrfMember => ConfigItem.Of(new VrfMembership(v["interface"]!.GetValue<string>(), v["vrf_master_interface"]!.GetValue<string>())),
            _ => DocumentReader.ParseValue(key, v.ToJsonString()),
        };
    }

    /// <summary>Reads the state file (if any). Returns the number of desired items loaded;
    /// a file that cannot be read is set aside (renamed .bad) and reported, never half-used.</summary>
    public int Load()
    {
        if (StatePath is not string path || !File.Exists(path))
            return 0;
        lock (_gate)
        {
            try
            {
                JsonNode root = JsonNode.Parse(File.ReadAllText(path)) ?? throw new ConfigException("empty state file");
                if (root["version"]?.GetValue<int>() != 2)
                    throw new ConfigException($"state file version {root["version"]} is not 2");
                var desired = new Dictionary<string, (string, ConfigItem)>(StringComparer.Ordinal);
                foreach (JsonNode? e in root["desired"]!.AsArray())
                    desired[e!["key"]!.GetValue<string>()] = (e["source"]!.GetValue<string>(), ReadEntry(e));
                var applied = new Dictionary<string, Applied>(StringComparer.Ordinal);
                foreach (JsonNode? e in root["applied"]!.AsArray())
                    applied[e!["key"]!.GetValue<string>()] = new Applied(ReadEntry(e), e["saved"]?.DeepClone() as JsonObject);
                var revisions = new List<Revision>();
                foreach (JsonNode? n in root["revisions"]!.AsArray())
                {
                    string rp = RevisionPath(n!.GetValue<int>());
                    if (!File.Exists(rp))
                        continue; // a revision file lost: that revision is gone, the rest stands
                    JsonNode r = JsonNode.Parse(File.ReadAllText(rp))!;
                    revisions.Add(new Revision(r["number"]!.GetValue<int>(), DateTime.Parse(r["time"]!.GetValue<string>(), CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind),
                        r["source"]!.GetValue<string>(), r["kind"]!.GetValue<string>(),
                        [.. r["items"]!.AsArray().Select(x => (x!["source"]!.GetValue<string>(), ReadEntry(x)))]));
                }
                _desired = desired;
                _applied = applied;
                _revisions.Clear();
                _revisions.AddRange(revisions);
                _revision = root["revision"]!.GetValue<int>();
                return desired.Count;
            }
            catch (Exception e) when (e is ConfigException or System.Text.Json.JsonException or NullReferenceException or InvalidOperationException
                or ArgumentException or FormatException or KeyNotFoundException or IOException)
            {
                string bad = path + ".bad";
                try
                {
                    File.Move(path, bad, overwrite: true);
                }
                catch (IOException)
                {
                }
                LogLoadFailed(_log, path, e.Message, bad);
                throw new ConfigException($"cannot read {path}: {e.Message} (moved to {bad}; start again to begin with an empty configuration)");
            }
        }
    }

    /// <summary>After <see cref="Load"/>: reads Linux back and applies only what differs (what
    /// already matches is not touched, so nothing flaps).</summary>
    public TxnResult Start()
    {
        lock (_gate)
        {
            HashSet<string> drifted = Drifted(null);
            return Run("engine", "start", _desired, new TxnOptions { BestEffort = true },
                new JsonObject { ["drifted"] = new JsonArray([.. drifted.Select(d => (JsonNode)d)]) }, _desired.Count, drifted: drifted);
        }
    }

    [LoggerMessage(EventId = 310, Level = LogLevel.Error, Message = "config: cannot write the state file {Path}: {Error}")]
    private static partial void LogSaveFailed(ILogger l, string path, string error);

    [LoggerMessage(EventId = 311, Level = LogLevel.Error, Message = "config: cannot read the state file {Path}: {Error}; moved to {Bad}")]
    private static partial void LogLoadFailed(ILogger l, string path, string error, string bad);
}
