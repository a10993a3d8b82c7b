using System.Globalization;
using System.Text.Json.Nodes;
using LinuxCp.Config.Model;
using Microsoft.Extensions.Logging;

namespace LinuxCp.Config.Engine;

// Persistence: the desired state, what is applied (with what each item saved to undo itself)
// and the revisions. A snapshot (one JSON file, written atomically; each revision's items in a
// file of their own) plus a journal: every commit appends one line with only what it changed,
// so a one-item change costs one short append, not a rewrite of the whole state. The journal is
// folded into a new snapshot when it grows as large as the snapshot.
public sealed partial class ConfigEngine
{
    public const string StateFileName = "config-state.json";
    public const string JournalFileName = "config-journal.jsonl";

    private string? StatePath => _opts.StateDirectory is null ? null : Path.Combine(_opts.StateDirectory, StateFileName);
    private string? JournalPath => _opts.StateDirectory is null ? null : Path.Combine(_opts.StateDirectory, JournalFileName);

    // The last journal line written (or read back); the snapshot records the last one it holds.
    private long _journalSeq;
    private long _journalBytes;
    private long _snapshotBytes;
    private readonly System.Buffers.ArrayBufferWriter<byte> _journalBuf = new(4096);

    /// <summary>Journal lines folded into the snapshot so far (for tests and the history).</summary>
    public long JournalCompactions { get; private set; }

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

    /// <summary>Records a commit: <paramref name="desiredKeys"/> and <paramref name="appliedKeys"/>
    /// are the keys whose desired or applied entry may have changed (set or removed);
    /// <paramref name="made"/> the revision the commit made, if any. Appends one journal line, or
    /// writes a new snapshot when there is none yet or the journal has grown as large as it.</summary>
    private void Save(IEnumerable<string> desiredKeys, IEnumerable<string> appliedKeys, Revision? made)
    {
        if (StatePath is not string path || JournalPath is not string jp
            || (_desired.Count == 0 && _applied.Count == 0 && _revisions.Count == 0 && !File.Exists(path)))
            return;
        if (!File.Exists(path) || _journalBytes >= (_opts.JournalCompactBytes > 0 ? _opts.JournalCompactBytes : Math.Max(1L << 20, _snapshotBytes)))
        {
            Snapshot();
            return;
        }
        try
        {
            _journalBuf.ResetWrittenCount();
            using (var w = new System.Text.Json.Utf8JsonWriter(_journalBuf))
            {
                w.WriteStartObject();
                w.WriteNumber("seq", _journalSeq + 1);
                w.WriteNumber("revision", _revision);
                w.WriteStartArray("desired");
                foreach (string k in desiredKeys)
                    if (_desired.TryGetValue(k, out var d))
                        WriteEntry(w, d.Source, d.Item);
                w.WriteEndArray();
                w.WriteStartArray("desired_removed");
                foreach (string k in desiredKeys)
                    if (!_desired.ContainsKey(k))
                        w.WriteStringValue(k);
                w.WriteEndArray();
                w.WriteStartArray("applied");
                foreach (string k in appliedKeys)
                    if (_applied.TryGetValue(k, out Applied? a))
                        WriteEntry(w, "", a.Item, a.Saved);
                w.WriteEndArray();
                w.WriteStartArray("applied_removed");
                foreach (string k in appliedKeys)
                    if (!_applied.ContainsKey(k))
                        w.WriteStringValue(k);
                w.WriteEndArray();
                if (made is not null)
                {
                    w.WriteStartObject("made");
                    w.WriteNumber("number", made.Number);
                    w.WriteString("time", made.Time.ToString("O", CultureInfo.InvariantCulture));
                    w.WriteString("source", made.Source);
                    w.WriteString("kind", made.Kind);
                    w.WriteEndObject();
                }
                w.WriteStartArray("revisions");
                foreach (Revision r in _revisions)
                    w.WriteNumberValue(r.Number);
                w.WriteEndArray();
                w.WriteEndObject();
            }
            System.Buffers.BuffersExtensions.Write(_journalBuf, "\n"u8);
            bool fresh = !File.Exists(jp);
            using (var f = new FileStream(jp, FileMode.Append, FileAccess.Write, FileShare.None, 1))
            {
                f.Write(_journalBuf.WrittenSpan);
                f.Flush(flushToDisk: false); // into the page cache, like the snapshot
            }
            if (fresh)
                File.SetUnixFileMode(jp, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            _journalSeq++;
            _journalBytes += _journalBuf.WrittenCount;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            LogSaveFailed(_log, jp, e.Message);
            Snapshot(); // a journal that cannot be appended to: try the whole state instead
        }
    }

    /// <summary>Writes the snapshot: the desired state, what is applied, the revision numbers
    /// kept (each revision's items are a file of their own, written once), and the last journal
    /// line it holds; then the journal is emptied.</summary>
    private void Snapshot()
    {
        if (StatePath is not string path)
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
                w.WriteNumber("journal_seq", _journalSeq);
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
            _snapshotBytes = new FileInfo(path).Length;
            if (JournalPath is string jp && File.Exists(jp))
            {
                File.Delete(jp);
                JournalCompactions++;
            }
            _journalBytes = 0;
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
                int revision = root["revision"]!.GetValue<int>();
                long seq = root["journal_seq"]?.GetValue<long>() ?? 0;
                _snapshotBytes = new FileInfo(path).Length;
                (seq, revision, _journalBytes) = Replay(desired, applied, revisions, seq, revision);
                _desired = desired;
                _applied = applied;
                _settled = false; // the first transaction plans the whole state
                _lastAll = null;
                _revisions.Clear();
                _revisions.AddRange(revisions);
                _revision = revision;
                _journalSeq = seq;
                return desired.Count;
            }
            catch (Exception e) when (e is ConfigException or System.Text.Json.JsonException or NullReferenceException or InvalidOperationException
                or ArgumentException or FormatException or KeyNotFoundException or IOException)
            {
                string bad = path + ".bad";
                try
                {
                    File.Move(path, bad, overwrite: true);
                    if (JournalPath is string jp && File.Exists(jp))
                        File.Move(jp, jp + ".bad", overwrite: true);
                }
                catch (IOException)
                {
                }
                LogLoadFailed(_log, path, e.Message, bad);
                throw new ConfigException($"cannot read {path}: {e.Message} (moved to {bad}; start again to begin with an empty configuration)");
            }
        }
    }

    /// <summary>Applies the journal's lines after the snapshot's last one, in order. A line cut
    /// short (lcpd stopped while writing it) ends the replay: that commit was not recorded.</summary>
    private (long Seq, int Revision, long Bytes) Replay(Dictionary<string, (string, ConfigItem)> desired, Dictionary<string, Applied> applied,
        List<Revision> revisions, long seq, int revision)
    {
        if (JournalPath is not string jp || !File.Exists(jp))
            return (seq, revision, 0);
        byte[] all = File.ReadAllBytes(jp);
        int at = 0;
        long used = 0;
        while (at < all.Length)
        {
            int nl = Array.IndexOf(all, (byte)'\n', at);
            if (nl < 0)
            {
                LogJournalTorn(_log, jp, all.Length - at);
                break;
            }
            JsonNode line;
            try
            {
                line = JsonNode.Parse(all.AsSpan(at, nl - at)) ?? throw new ConfigException("empty journal line");
            }
            catch (System.Text.Json.JsonException)
            {
                LogJournalTorn(_log, jp, all.Length - at);
                break;
            }
            at = nl + 1;
            used = at;
            long n = line["seq"]!.GetValue<long>();
            if (n <= seq)
                continue; // already in the snapshot (lcpd stopped between writing it and emptying the journal)
            if (n != seq + 1)
                throw new ConfigException($"journal line {n} follows {seq}: a line is missing");
            seq = n;
            revision = line["revision"]!.GetValue<int>();
            foreach (JsonNode? e in line["desired"]!.AsArray())
                desired[e!["key"]!.GetValue<string>()] = (e["source"]!.GetValue<string>(), ReadEntry(e));
            foreach (JsonNode? k in line["desired_removed"]!.AsArray())
                desired.Remove(k!.GetValue<string>());
            foreach (JsonNode? e in line["applied"]!.AsArray())
                applied[e!["key"]!.GetValue<string>()] = new Applied(ReadEntry(e), e["saved"]?.DeepClone() as JsonObject);
            foreach (JsonNode? k in line["applied_removed"]!.AsArray())
                applied.Remove(k!.GetValue<string>());
            if (line["made"] is JsonNode m)
                revisions.Add(new Revision(m["number"]!.GetValue<int>(),
                    DateTime.Parse(m["time"]!.GetValue<string>(), CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind),
                    m["source"]!.GetValue<string>(), m["kind"]!.GetValue<string>(), [.. desired.Values]));
            var kept = line["revisions"]!.AsArray().Select(x => x!.GetValue<int>()).ToHashSet();
            revisions.RemoveAll(r => !kept.Contains(r.Number));
        }
        if (used < all.Length)
        {
            using var f = new FileStream(jp, FileMode.Open, FileAccess.Write);
            f.SetLength(used); // the next line starts where the last whole one ended
        }
        return (seq, revision, used);
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

    [LoggerMessage(EventId = 312, Level = LogLevel.Warning, Message = "config: the last {Bytes} bytes of {Path} are not a whole line (lcpd stopped while writing it); that commit is not restored")]
    private static partial void LogJournalTorn(ILogger l, string path, int bytes);

    [LoggerMessage(EventId = 311, Level = LogLevel.Error, Message = "config: cannot read the state file {Path}: {Error}; moved to {Bad}")]
    private static partial void LogLoadFailed(ILogger l, string path, string error, string bad);
}
