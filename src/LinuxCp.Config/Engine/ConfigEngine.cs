using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;
using LinuxCp.Config.Linux;
using LinuxCp.Config.Model;
using Microsoft.Extensions.Logging;

namespace LinuxCp.Config.Engine;

/// <summary>Options of the engine.</summary>
public sealed record EngineOptions
{
    /// <summary>Where the desired state and its revisions are kept (null: not kept).</summary>
    public string? StateDirectory { get; init; } = "/var/lib/lcpd";
    /// <summary>Repair drift (a managed item changed behind lcpd's back); false: only report it.</summary>
    public bool Repair { get; init; } = true;
    public int MaxRevisions { get; init; } = 100;
    public int MaxHistory { get; init; } = 200;
    public int MaxRetries { get; init; } = 5;
    /// <summary>Plan changes of a few routes or ARP entries by themselves (false: always plan the
    /// whole state; the tests compare the two).</summary>
    public bool Incremental { get; init; } = true;
    /// <summary>Journal size at which it is folded into a new snapshot (0: as large as the snapshot, at least 1 MiB).</summary>
    public long JournalCompactBytes { get; init; }
}

/// <summary>The declarative configuration engine: a keyed desired state (from any source), made
/// true in Linux by transactions that validate everything, plan operations in dependency order,
/// apply them, read Linux back to verify, and revert all of it on any failure. Items whose
/// dependencies are missing wait as PENDING and are applied when they appear. One lock
/// serialises everything: the engine runs on control-plane threads, never on a worker.</summary>
public sealed partial class ConfigEngine : IDisposable
{
    private static readonly ItemKind[] KindOrder = [ItemKind.Pair, ItemKind.Interface, ItemKind.VrfMember, ItemKind.AdminState, ItemKind.Address, ItemKind.Arp, ItemKind.Route, ItemKind.RuleChain];

    private readonly object _gate = new();
    private readonly ILinux _linux;
    private readonly IPairControl? _pairs;
    private readonly ILogger _log;
    private readonly EngineOptions _opts;
    private readonly Dictionary<ItemKind, IHandler> _handlers = new()
    {
        [ItemKind.Interface] = new InterfaceHandler(),
        [ItemKind.Address] = new AddressHandler(),
        [ItemKind.AdminState] = new AdminHandler(),
        [ItemKind.VrfMember] = new VrfMemberHandler(),
        [ItemKind.Arp] = new ArpHandler(),
        [ItemKind.Route] = new RouteHandler(),
        [ItemKind.RuleChain] = new RuleChainHandler(),
        [ItemKind.Pair] = new PairHandler(),
    };

    // The desired state: user-level items by key, each with the source that declared it.
    private Dictionary<string, (string Source, ConfigItem Item)> _desired = new(StringComparer.Ordinal);
    // Values a KV source stored that do not parse or validate: INVALID, not applied.
    private readonly Dictionary<string, (string Source, string Error)> _invalid = new(StringComparer.Ordinal);
    // What is applied in Linux (user and derived), with what each saved to undo itself.
    private Dictionary<string, Applied> _applied = new(StringComparer.Ordinal);
    private readonly Dictionary<string, ItemStatus> _status = new(StringComparer.Ordinal);
    private readonly Dictionary<string, (int Attempts, DateTime Next)> _retry = new(StringComparer.Ordinal);
    private readonly List<Revision> _revisions = [];
    private readonly LinkedList<TxnRecord> _history = new();
    private HashSet<string> _lastTarget = new(StringComparer.Ordinal);
    private int _revision;
    private long _seq;
    private PendingConfirm? _confirm;
    private long _driftFound;
    private long _driftRepaired;

    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<object, object> Valid = [];

    private sealed record PendingConfirm(int Revision, Dictionary<string, (string Source, ConfigItem Item)> Before, DateTime Deadline, Timer Timer);

    public ConfigEngine(ILinux linux, IPairControl? pairs, EngineOptions options, ILogger log)
    {
        _linux = linux;
        _pairs = pairs;
        _opts = options;
        _log = log;
    }

    /// <summary>Every change of a key's state.</summary>
    public event Action<StateChange>? Changed;

    public int CurrentRevision
    {
        get
        {
            lock (_gate)
                return _revision;
        }
    }

    public long DriftFound => Interlocked.Read(ref _driftFound);
    public long DriftRepaired => Interlocked.Read(ref _driftRepaired);

    public void Dispose()
    {
        lock (_gate)
        {
            _confirm?.Timer.Dispose();
            _confirm = null;
        }
        Watchers?.Dispose();
    }

    // ---- entry points ---------------------------------------------------------------------------

    /// <summary>Adds or changes the items of a document (with Replace: the source's whole state).</summary>
    public TxnResult Update(string source, ConfigDocument doc, TxnOptions o)
    {
        var items = doc.Items();
        lock (_gate)
        {
            RefuseWhileConfirming(o);
            var next = Copy(_desired);
            if (o.Replace)
                foreach (var k in next.Where(kv => kv.Value.Source == source).Select(kv => kv.Key).ToList())
                    next.Remove(k);
            foreach (ConfigItem i in items)
                next[i.Key] = (source, i);
            return Run(source, o.Replace ? "replace" : "update", next, o, DocumentWriter.Document(doc), items.Count, checkDuplicates: items);
        }
    }

    /// <summary>Removes items by key (user-level keys; a prefix ending in '/' removes all under it).</summary>
    public TxnResult Delete(string source, IReadOnlyList<string> keys, TxnOptions o)
    {
        lock (_gate)
        {
            RefuseWhileConfirming(o);
            var next = Copy(_desired);
            var errors = new List<ConfigError>();
            var removed = new JsonArray();
            foreach (string k in keys)
            {
                bool prefix = k.EndsWith('/');
                var hit = prefix ? next.Keys.Where(x => x.StartsWith(k, StringComparison.Ordinal)).ToList() : next.ContainsKey(k) ? [k] : [];
                var invalid = _invalid.Keys.Where(x => prefix ? x.StartsWith(k, StringComparison.Ordinal) : x == k).ToList();
                foreach (string x in invalid)
                    _invalid.Remove(x);
                if (hit.Count == 0 && invalid.Count == 0 && !prefix)
                    errors.Add(new ConfigError(k, "no such key in the desired state"));
                foreach (string h in hit)
                {
                    next.Remove(h);
                    removed.Add(h);
                }
            }
            if (errors.Count != 0)
                return Refused(source, "delete", errors, new JsonObject { ["keys"] = new JsonArray([.. keys.Select(x => (JsonNode)x)]) });
            return Run(source, "delete", next, o, new JsonObject { ["keys"] = removed }, keys.Count);
        }
    }

    /// <summary>One KV value (etcd, a REST PUT of one key): an unparseable or invalid value makes
    /// the key INVALID and changes nothing else.</summary>
    public TxnResult Put(string source, string key, string json, TxnOptions o)
    {
        ConfigItem item;
        try
        {
            item = ParseKv(key, json);
        }
        catch (ConfigException e)
        {
            lock (_gate)
            {
                _invalid[key] = (source, e.Message);
                SetStatus(key, Keys.KindOf(key)?.ToString() ?? "?", ItemState.Invalid, e.Message, source, false);
                return Refused(source, "put", e.Errors, new JsonObject { ["key"] = key });
            }
        }
        lock (_gate)
        {
            _invalid.Remove(key);
            var next = Copy(_desired);
            next[key] = (source, item);
            return Run(source, "put", next, o with { BestEffort = true }, new JsonObject { ["key"] = key, ["value"] = DocumentWriter.Item(item.Value) }, 1);
        }
    }

    /// <summary>A full resync of a KV source (etcd after a start, a lost watch or a restart of the
    /// store): its items become exactly these values. Values that do not parse or validate are
    /// INVALID; the rest is one best-effort transaction, so what is unchanged is not touched.</summary>
    public TxnResult ReplaceSource(string source, IEnumerable<(string Key, string Json)> values)
    {
        var items = new List<ConfigItem>();
        var invalid = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (key, json) in values)
        {
            try
            {
                items.Add(ParseKv(key, json));
            }
            catch (ConfigException e)
            {
                invalid[key] = e.Message;
            }
        }
        lock (_gate)
        {
            foreach (string k in _invalid.Where(kv => kv.Value.Source == source && !invalid.ContainsKey(kv.Key)).Select(kv => kv.Key).ToList())
                _invalid.Remove(k);
            foreach (var (k, why) in invalid)
            {
                _invalid[k] = (source, why);
                SetStatus(k, Keys.KindOf(k)?.ToString() ?? "?", ItemState.Invalid, why, source, false);
            }
            var next = Copy(_desired);
            foreach (var k in next.Where(kv => kv.Value.Source == source).Select(kv => kv.Key).ToList())
                next.Remove(k);
            foreach (ConfigItem i in items)
                next[i.Key] = (source, i);
            return Run(source, "full resync", next, new TxnOptions { BestEffort = true }, new JsonObject { ["items"] = items.Count, ["invalid"] = invalid.Count }, items.Count);
        }
    }

    /// <summary>One KV value, parsed and validated on its own; throws with every error.</summary>
    private ConfigItem ParseKv(string key, string json)
    {
        ConfigItem item = DocumentReader.ParseValue(key, json);
        var errors = new List<ConfigError>();
        _handlers[item.Kind].Validate(item, key, errors);
        return errors.Count == 0 ? item : throw new ConfigException(errors);
    }

    /// <summary>Makes the desired state that of revision <paramref name="rev"/>.</summary>
    public TxnResult Rollback(int rev, TxnOptions o)
    {
        lock (_gate)
        {
            RefuseWhileConfirming(o);
            Revision r = _revisions.FirstOrDefault(x => x.Number == rev)
                ?? throw new ConfigException($"no revision {rev} (kept: {(_revisions.Count == 0 ? "none" : $"{_revisions[0].Number}-{_revisions[^1].Number}")})");
            var next = new Dictionary<string, (string, ConfigItem)>(StringComparer.Ordinal);
            foreach (var (s, i) in r.Items)
                next[i.Key] = (s, i);
            return Run("rollback", $"rollback to {rev}", next, o, new JsonObject { ["revision"] = rev }, r.Items.Count);
        }
    }

    /// <summary>Confirms the last commit made with a confirm timeout.</summary>
    public int Confirm()
    {
        lock (_gate)
        {
            PendingConfirm c = _confirm ?? throw new ConfigException("nothing to confirm: no commit is waiting for confirmation");
            c.Timer.Dispose();
            _confirm = null;
            LogConfirmed(_log, c.Revision);
            return c.Revision;
        }
    }

    /// <summary>Seconds left before an unconfirmed commit reverts (null: none waiting).</summary>
    public (int Revision, double SecondsLeft)? Confirming
    {
        get
        {
            lock (_gate)
                return _confirm is null ? null : (_confirm.Revision, Math.Max(0, (_confirm.Deadline - DateTime.UtcNow).TotalSeconds));
        }
    }

    private void RefuseWhileConfirming(TxnOptions o)
    {
        if (_confirm is not null && !o.DryRun)
            throw new ConfigException($"revision {_confirm.Revision} waits for 'config confirm' ({(_confirm.Deadline - DateTime.UtcNow).TotalSeconds:F0} s left); confirm it or let it revert first");
    }

    private void ConfirmExpired(object? state)
    {
        lock (_gate)
        {
            if (_confirm is null || !ReferenceEquals(state, _confirm))
                return;
            PendingConfirm c = _confirm;
            _confirm = null;
            c.Timer.Dispose();
            LogConfirmTimeout(_log, c.Revision);
            TxnResult r = Run("confirm-timeout", $"revert of unconfirmed revision {c.Revision}", c.Before, new TxnOptions(), null, c.Before.Count);
            if (!r.Ok)
                LogRevertFailed(_log, c.Revision, r.Error);
        }
    }

    /// <summary>Reads Linux back and makes it match again: full (also re-reads Linux for every
    /// item), downstream (what is applied), upstream (re-evaluate pending items).</summary>
    public TxnResult Resync(string mode = "downstream")
    {
        lock (_gate)
        {
            if (mode is not ("full" or "downstream" or "upstream"))
                throw new ConfigException($"resync mode is full, downstream or upstream, not '{mode}'");
            HashSet<string> drifted = mode == "upstream" ? [] : Drifted(null);
            return Run("resync", $"resync {mode}", _desired, new TxnOptions(), new JsonObject { ["mode"] = mode, ["drifted"] = new JsonArray([.. drifted.Select(d => (JsonNode)d)]) }, 0, drifted: drifted);
        }
    }

    /// <summary>Housekeeping (about once a second): apply pending items whose dependencies
    /// appeared, retry what failed retriably, check namespaces where Linux changed.</summary>
    public void Tick()
    {
        lock (_gate)
        {
            try
            {
                HashSet<string> dirty = Watchers?.TakeDirty() ?? [];
                HashSet<string> drifted = dirty.Count == 0 ? [] : Drifted(dirty);
                if (drifted.Count != 0)
                {
                    Interlocked.Add(ref _driftFound, drifted.Count);
                    foreach (string d in drifted)
                        LogDrift(_log, d, _opts.Repair ? "repairing" : "reported only (--no-repair)");
                    if (!_opts.Repair)
                    {
                        foreach (string d in drifted)
                            if (_status.TryGetValue(d, out ItemStatus? s))
                                SetStatus(d, s.Kind, ItemState.Configured, "drifted: changed in Linux behind lcpd (not repaired)", s.Source, s.Derived);
                        drifted.Clear();
                    }
                }
                bool retryDue = _retry.Values.Any(r => r.Next <= DateTime.UtcNow);
                if (drifted.Count != 0 || retryDue || PendingChanged())
                {
                    TxnResult r = Run(drifted.Count != 0 ? "repair" : "engine", drifted.Count != 0 ? "repair" : retryDue ? "retry" : "pending", _desired,
                        new TxnOptions { BestEffort = true }, null, 0, drifted: drifted);
                    if (drifted.Count != 0 && r.Ok)
                        Interlocked.Add(ref _driftRepaired, drifted.Count);
                }
            }
            catch (Exception e) when (e is LinuxException or ConfigException)
            {
                LogTickFailed(_log, e.Message);
            }
            finally
            {
                _linux.Flush();
            }
        }
    }

    /// <summary>Does the set of applicable items differ from what was last applied (a namespace,
    /// pair or link appeared or went away)?</summary>
    private bool PendingChanged()
    {
        // Only the conditions outside the desired state can change between transactions (a
        // namespace, a pair or a link appearing or going away): only they are looked at.
        if (_lastDeps is null)
            return false;
        var cx = new Ctx(_linux, _pairs, _applied) { Probe = true };
        int failing = 0;
        foreach (var (key, deps) in _lastDeps)
        {
            foreach (Dep d in deps)
            {
                if (d.External is null)
                    continue;
                bool fails = d.External(cx) is not null;
                if (fails != _lastExternalFail.Contains(key))
                    return true;
                if (fails)
                {
                    failing++;
                    break;
                }
            }
        }
        return failing != _lastExternalFail.Count;
    }

    // What the last transaction resolved: every key's dependencies, and the keys an outside condition held back.
    private Dictionary<string, List<Dep>>? _lastDeps;
    private HashSet<string> _lastExternalFail = new(StringComparer.Ordinal);

    // ---- the transaction ------------------------------------------------------------------------

    private static Dictionary<string, (string Source, ConfigItem Item)> Copy(Dictionary<string, (string Source, ConfigItem Item)> d) =>
        new(d, StringComparer.Ordinal);

    private TxnResult Refused(string source, string kind, IReadOnlyList<ConfigError> errors, JsonNode? input)
    {
        var rec = NewRecord(source, kind, input, 0);
        rec.Outcome = "refused";
        rec.Error = string.Join("; ", errors.Take(20));
        Remember(rec);
        return new TxnResult(false, "refused", rec.Error, _revision, rec.Seq, [], [], errors);
    }

    /// <summary>Inputs larger than this are summarised in the history (the revisions hold the state).</summary>
    private const int MaxHistoryInputChars = 64 << 10;

    private TxnRecord NewRecord(string source, string kind, JsonNode? input, int n)
    {
        if (input is not null && n > 200 && input.ToJsonString().Length > MaxHistoryInputChars)
            input = new JsonObject { ["items"] = n, ["note"] = $"input of {n} items not kept in the history; the revision holds the resulting state" };
        return new() { Seq = ++_seq, Time = DateTime.UtcNow, Source = source, Kind = kind, Input = input, InputItems = n, Revision = _revision };
    }

    /// <summary>Operations kept per transaction in the history (the counts are exact).</summary>
    public const int MaxHistoryOps = 2000;

    private void Remember(TxnRecord r)
    {
        r.PlannedCount = r.Planned.Count;
        r.ExecutedCount = r.Executed.Count;
        if (r.Planned.Count > MaxHistoryOps)
            r.Planned.RemoveRange(MaxHistoryOps, r.Planned.Count - MaxHistoryOps);
        if (r.Executed.Count > MaxHistoryOps)
            r.Executed.RemoveRange(MaxHistoryOps, r.Executed.Count - MaxHistoryOps);
        _history.AddLast(r);
        while (_history.Count > _opts.MaxHistory)
            _history.RemoveFirst();
    }

    private string PathOf(ConfigItem i, TxnOptions o) =>
        o.Paths is not null && o.Paths.TryGetValue(i.Value, out string? p) ? p : i.Key;

    /// <summary>Validates a whole desired state: each item, then what only the set can tell
    /// (duplicates, VETH peers that do not name each other, two interfaces with one Linux name in
    /// one namespace, dependency cycles).</summary>
    private List<ConfigError> Validate(Dictionary<string, (string Source, ConfigItem Item)> next, TxnOptions o, IReadOnlyList<ConfigItem>? input)
    {
        var errors = new List<ConfigError>();
        if (input is not null)
        {
            var seen = new Dictionary<string, ConfigItem>(StringComparer.Ordinal);
            foreach (ConfigItem i in input)
                if (!seen.TryAdd(i.Key, i))
                    errors.Add(new(PathOf(i, o), $"duplicate of {PathOf(seen[i.Key], o)} (both are {i.Key})"));
        }
        foreach (var (_, (_, item)) in next)
        {
            if (Valid.TryGetValue(item.Value, out _))
                continue; // validated before (values are immutable)
            int before = errors.Count;
            _handlers[item.Kind].Validate(item, PathOf(item, o), errors);
            if (errors.Count == before)
                Valid.AddOrUpdate(item.Value, true);
        }
        var byLinuxName = new Dictionary<(string, string), LinuxInterface>();
        foreach (var (_, (_, item)) in next)
        {
            if (item.Value is not LinuxInterface i)
                continue;
            if (i.Type == InterfaceType.Veth && i.Veth is { } v && next.TryGetValue(Keys.Interface(v.PeerIfName), out var p))
            {
                if (p.Item.Value is not LinuxInterface { Type: InterfaceType.Veth } peer)
                    errors.Add(new(PathOf(item, o) + ".veth.peer_if_name", $"{v.PeerIfName} is not a VETH"));
                else if (peer.Veth?.PeerIfName != i.Name)
                    errors.Add(new(PathOf(item, o) + ".veth.peer_if_name", $"{v.PeerIfName} names {peer.Veth?.PeerIfName} as its peer, not {i.Name}"));
            }
            if (i.VrfMasterInterface.Length != 0 && next.TryGetValue(Keys.Interface(i.VrfMasterInterface), out var m)
                && m.Item.Value is not LinuxInterface { Type: InterfaceType.VrfDevice })
                errors.Add(new(PathOf(item, o) + ".vrf_master_interface", $"{i.VrfMasterInterface} is not a VRF_DEVICE"));
            if (i.Type is InterfaceType.TapToVpp)
                continue; // its namespace is the pair's, known only when the pair is there
            var k = (i.Namespace?.ToString() ?? "", InterfaceHandler.LinuxName(i));
            if (byLinuxName.TryGetValue(k, out LinuxInterface? other))
                errors.Add(new(PathOf(item, o) + ".host_if_name", $"{other.Name} has the same Linux name {k.Item2} in the same namespace"));
            else
                byLinuxName[k] = i;
        }
        foreach (var (_, (_, item)) in next)
        {
            if (item.Value is RuleChain c)
                for (int k = 0; k < c.Interfaces.Count; k++)
                    if (next.TryGetValue(Keys.Interface(c.Interfaces[k]), out var ii) && ii.Item.Value is LinuxInterface li
                        && li.Type != InterfaceType.TapToVpp && !NamespaceRef.Same(li.Namespace, c.Namespace))
                        errors.Add(new($"{PathOf(item, o)}.interfaces[{k}]", $"{li.Name} is in namespace '{li.Namespace}', the chain in '{c.Namespace}'"));
        }
        return errors;
    }

    /// <summary>User items and the values derived from them, each with its source.</summary>
    private Dictionary<string, (string Source, ConfigItem Item)> Expand(Dictionary<string, (string Source, ConfigItem Item)> desired)
    {
        var all = new Dictionary<string, (string, ConfigItem)>(desired, StringComparer.Ordinal);
        foreach (var (_, (src, item)) in desired)
            foreach (ConfigItem di in DerivedCache.GetValue(item.Value, _ => [.. _handlers[item.Kind].Derive(item).Select(ConfigItem.Of)]))
                all[di.Key] = (src, di);
        return all;
    }

    private Dictionary<string, List<Dep>> DepsOf(Dictionary<string, (string Source, ConfigItem Item)> all)
    {
        var declared = new DeclaredView(all);
        var result = new Dictionary<string, List<Dep>>(all.Count, StringComparer.Ordinal);
        foreach (var (key, (_, item)) in all)
            result[key] = DepsOfItem(item, all, declared);
        return result;
    }

    private List<Dep> DepsOfItem(ConfigItem item, Dictionary<string, (string Source, ConfigItem Item)> all, DeclaredView declared)
    {
        // A value's dependencies are the same as long as the values it looked at are: only a
        // route looks at another (its interface's addresses, for the gateway).
        object? context = item.Value is LinuxRoute r && all.TryGetValue(Keys.Interface(r.OutgoingInterface), out var i) ? i.Item.Value : null;
        if (!DepCache.TryGetValue(item.Value, out DepsEntry? e) || !ReferenceEquals(e.Context, context))
        {
            e = new DepsEntry(context, _handlers[item.Kind].Dependencies(item, declared).ToList());
            DepCache.AddOrUpdate(item.Value, e);
        }
        return e.Deps;
    }

    private sealed record DepsEntry(object? Context, List<Dep> Deps);

    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<object, DepsEntry> DepCache = [];

    // The values derived from a value are made once, so their caches (text, dependencies) hold too.
    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<object, List<ConfigItem>> DerivedCache = [];

    /// <summary>The declared items by key, without copying the dictionary.</summary>
    private sealed class DeclaredView(Dictionary<string, (string Source, ConfigItem Item)> all) : IReadOnlyDictionary<string, ConfigItem>
    {
        public ConfigItem this[string key] => all[key].Item;
        public IEnumerable<string> Keys => all.Keys;
        public IEnumerable<ConfigItem> Values => all.Values.Select(v => v.Item);
        public int Count => all.Count;
        public bool ContainsKey(string key) => all.ContainsKey(key);

        public bool TryGetValue(string key, [System.Diagnostics.CodeAnalysis.MaybeNullWhen(false)] out ConfigItem value)
        {
            bool ok = all.TryGetValue(key, out var v);
            value = v.Item;
            return ok;
        }

        public IEnumerator<KeyValuePair<string, ConfigItem>> GetEnumerator() =>
            all.Select(kv => new KeyValuePair<string, ConfigItem>(kv.Key, kv.Value.Item)).GetEnumerator();

        System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
    }

    /// <summary>The items that can be applied now (every dependency declared, applicable and, for
    /// conditions outside, met), and why each other one waits.</summary>
    private (HashSet<string> Target, Dictionary<string, string> Pending) Resolve(Dictionary<string, (string Source, ConfigItem Item)> all, Ctx cx) =>
        Resolve(all, DepsOf(all), cx, out _);

    private (HashSet<string> Target, Dictionary<string, string> Pending) Resolve(Dictionary<string, (string Source, ConfigItem Item)> all,
        Dictionary<string, List<Dep>> deps, Ctx cx, out HashSet<string> externalFail)
    {
        externalFail = new HashSet<string>(StringComparer.Ordinal);
        var target = new HashSet<string>(all.Keys, StringComparer.Ordinal);
        var pending = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (key, list) in deps)
        {
            foreach (Dep d in list)
            {
                string? why = d.Key is not null
                    ? (all.ContainsKey(d.Key) ? null : $"waiting for {d.Describe} (not declared)")
                    : d.External?.Invoke(cx);
                if (why is not null)
                {
                    target.Remove(key);
                    pending[key] = d.Key is null ? $"waiting for {d.Describe}: {why}" : why;
                    if (d.Key is null)
                        externalFail.Add(key);
                    break;
                }
            }
        }
        for (bool changed = true; changed;)
        {
            changed = false;
            foreach (string key in target.ToList())
            {
                Dep? d = deps[key].FirstOrDefault(x => x.Key is not null && !target.Contains(x.Key));
                if (d is null)
                    continue;
                target.Remove(key);
                pending[key] = $"waiting for {d.Describe} ({(pending.TryGetValue(d.Key!, out string? w) ? w : "pending")})";
                changed = true;
            }
        }
        return (target, pending);
    }

    /// <summary>Keys in dependency order (dependencies first); Kahn's algorithm, ties broken by
    /// kind then key so plans are reproducible.</summary>
    private List<string> Order(IEnumerable<string> keys, Dictionary<string, List<Dep>> deps, Func<string, ItemKind> kindOf)
    {
        var set = new HashSet<string>(keys, StringComparer.Ordinal);
        var indeg = set.ToDictionary(k => k, _ => 0, StringComparer.Ordinal);
        var users = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        foreach (string k in set)
            foreach (Dep d in deps.TryGetValue(k, out var l) ? l : [])
                if (d.Ordered && d.Key is not null && set.Contains(d.Key) && d.Key != k)
                {
                    indeg[k]++;
                    (users.TryGetValue(d.Key, out var u) ? u : users[d.Key] = []).Add(k);
                }
        var ready = new PriorityQueue<string, (int, string)>();
        foreach (var (k, n) in indeg)
            if (n == 0)
                ready.Enqueue(k, (Array.IndexOf(KindOrder, kindOf(k)), k));
        var order = new List<string>(set.Count);
        while (ready.TryDequeue(out string? k, out _))
        {
            order.Add(k);
            foreach (string u in users.TryGetValue(k, out var l) ? l : [])
                if (--indeg[u] == 0)
                    ready.Enqueue(u, (Array.IndexOf(KindOrder, kindOf(u)), u));
        }
        if (order.Count != set.Count)
            throw new ConfigException($"dependency cycle among {string.Join(", ", set.Except(order).Take(5))}");
        return order;
    }

    private enum OpKind { Delete, Create, Update }

    private sealed record Op(OpKind Kind, string Key, ConfigItem? Old, ConfigItem? New);

    /// <summary>What a transaction will do, and what it resolved on the way.</summary>
    private sealed class Plan
    {
        /// <summary>Every key of the new state (user and derived), with its source.</summary>
        public required Dictionary<string, (string Source, ConfigItem Item)> All { get; init; }
        public required HashSet<string> Target { get; init; }
        public required Dictionary<string, string> Pending { get; init; }
        public required HashSet<string> ExternalFail { get; init; }
        public required Dictionary<string, List<Dep>> Deps { get; init; }
        public required Dictionary<string, Applied> Applied { get; init; }
        public required Ctx Cx { get; init; }
        public List<Op> Ops { get; } = [];
        /// <summary>Namespaces before the transaction (null: it cannot create any).</summary>
        public HashSet<string>? NamespacesBefore { get; init; }
        /// <summary>Non-null for an incremental plan: the only desired keys it changes (routes and
        /// ARP entries, on which nothing depends); All, Target and Deps are then the last
        /// transaction's, updated in place at commit.</summary>
        public List<string>? Leaves { get; init; }
    }

    /// <summary>Runs one transaction to make Linux hold <paramref name="next"/>. Called under the lock.</summary>
    private TxnResult Run(string source, string kind, Dictionary<string, (string Source, ConfigItem Item)> next, TxnOptions o,
        JsonNode? input, int inputItems, IReadOnlyList<ConfigItem>? checkDuplicates = null, HashSet<string>? drifted = null)
    {
        var sw = Stopwatch.StartNew();
        TxnRecord rec = NewRecord(source, kind, input, inputItems);
        try
        {
            rec.Phase("start", sw);
            Plan? plan = drifted is null ? PlanLeaves(next, checkDuplicates) : null;
            if (plan is not null)
                rec.Phase("incremental plan", sw);
            else
            {
                List<ConfigError> errors = Validate(next, o, checkDuplicates);
                if (errors.Count != 0)
                {
                    rec.Outcome = "refused";
                    rec.Error = string.Join("; ", errors.Take(20));
                    return new TxnResult(false, "refused", rec.Error, _revision, rec.Seq, [], [], errors);
                }
                rec.Phase("validate", sw);
                plan = PlanAll(next, drifted, rec, sw);
            }
            foreach (Op op in plan.Ops)
                rec.Planned.Add(new OpRecord(op.Kind.ToString().ToLowerInvariant(), op.Key, "planned", "", 0));

            if (o.DryRun)
            {
                rec.Outcome = "dry-run";
                return Result(rec, true, plan.Pending, plan.All);
            }

            var failed = new Dictionary<string, LinuxException>(StringComparer.Ordinal);
            var undo = new Stack<(string What, Action Do)>();
            var skipped = new HashSet<string>(StringComparer.Ordinal);
            Ctx cx = plan.Cx;
            Dictionary<string, Applied> applied = plan.Applied;
            rec.Phase("prepare", sw);
            string? error = Execute(plan.Ops, cx, applied, o.BestEffort, rec, failed, undo, skipped);
            foreach (string k in skipped)
                plan.Pending[k] = "waiting for a dependency that failed in this transaction";
            if (error is null || o.BestEffort)
            {
                rec.Phase("execute", sw);
                // Read Linux back: everything created or updated must now be there as declared.
                cx.TouchAll();
                cx.OldView = false;
                foreach (Op op in plan.Ops.Where(x => x.Kind != OpKind.Delete && !failed.ContainsKey(x.Key) && !skipped.Contains(x.Key)))
                {
                    string? diff = _handlers[op.New!.Kind].Verify(op.New, cx);
                    if (diff is null)
                        continue;
                    var e = new LinuxException($"verify {op.Key}: {diff}", 0);
                    rec.Executed.Add(new OpRecord("verify", op.Key, "failed", diff, 0));
                    if (!o.BestEffort)
                    {
                        error = e.Message;
                        break;
                    }
                    failed[op.Key] = e;
                    applied.Remove(op.Key);
                }
            }
            if (error is not null && !o.BestEffort)
            {
                int n = Revert(undo, rec, cx);
                // Namespaces this transaction created (for its items) go too, when nothing else is in them.
                foreach (string ns in plan.NamespacesBefore is null ? [] : _linux.NamedNamespaces().Where(x => !plan.NamespacesBefore.Contains(x)))
                {
                    try
                    {
                        if (_linux.Links($"/run/netns/{ns}").All(l => l.Name == "lo"))
                        {
                            _linux.DeleteNamedNamespace(ns);
                            rec.Executed.Add(new OpRecord("revert", $"namespace {ns}", "ok", "", 0));
                            n++;
                        }
                    }
                    catch (LinuxException e)
                    {
                        rec.Executed.Add(new OpRecord("revert", $"namespace {ns}", "failed", e.Message, 0));
                    }
                }
                rec.Outcome = "reverted";
                rec.Error = $"{error}; {n} operation(s) reverted";
                LogReverted(_log, rec.Seq, error, n);
                return Result(rec, false, plan.Pending, plan.All, Errors(error));
            }

            rec.Phase("verify", sw);
            // Commit.
            List<string> desiredKeys = ChangedKeys(_desired, next, plan.Leaves);
            bool desiredChanged = desiredKeys.Count != 0;
            var before = _desired;
            _desired = next;
            _applied = applied;
            if (plan.Leaves is null)
            {
                _lastAll = plan.All;
                _lastTarget = plan.Target;
                _lastDeps = plan.Deps;
                _lastExternalFail = plan.ExternalFail;
            }
            else
            {
                foreach (string k in plan.Leaves)
                {
                    if (next.TryGetValue(k, out var v))
                    {
                        _lastAll![k] = v;
                        _lastTarget.Add(k);
                    }
                    else
                    {
                        _lastAll!.Remove(k);
                        _lastTarget.Remove(k);
                        _lastDeps!.Remove(k);
                    }
                }
                foreach (var (k, d) in plan.Deps)
                    _lastDeps![k] = d;
            }
            // Settled: everything declared is applied, nothing waits or failed; the next
            // transaction may then plan incrementally.
            _settled = failed.Count == 0 && plan.Pending.Count == 0 && _lastExternalFail.Count == 0 && _applied.Count == _lastAll!.Count;
            foreach (var (k, e) in failed)
            {
                plan.Pending.Remove(k);
                var (att, _) = _retry.TryGetValue(k, out var r) ? r : (0, DateTime.MinValue);
                if (e.Retriable && att < _opts.MaxRetries)
                    _retry[k] = (att + 1, DateTime.UtcNow.AddSeconds(Math.Pow(2, att)));
                else
                    _retry.Remove(k);
            }
            foreach (string k in _retry.Keys.Where(k => !failed.ContainsKey(k)).ToList())
                _retry.Remove(k);
            rec.Phase("commit", sw);
            UpdateStatuses(plan.All, plan.Pending, failed, plan.Leaves);
            Revision? made = null;
            if (desiredChanged && source is not ("engine" or "repair" or "resync"))
            {
                _revision++;
                _revisions.Add(made = new Revision(_revision, DateTime.UtcNow, source, kind, [.. next.Values.Select(v => (v.Source, v.Item))]));
                while (_revisions.Count > _opts.MaxRevisions)
                    _revisions.RemoveAt(0);
                if (o.ConfirmSeconds > 0)
                {
                    PendingConfirm? pc = null;
                    var timer = new Timer(s => ConfirmExpired(pc), null, Timeout.Infinite, Timeout.Infinite);
                    pc = new PendingConfirm(_revision, before, DateTime.UtcNow.AddSeconds(o.ConfirmSeconds), timer);
                    _confirm = pc;
                    timer.Change(TimeSpan.FromSeconds(o.ConfirmSeconds), Timeout.InfiniteTimeSpan);
                }
            }
            rec.Revision = _revision;
            rec.Outcome = failed.Count == 0 ? "ok" : "partial";
            if (failed.Count != 0)
                rec.Error = string.Join("; ", failed.Take(10).Select(f => $"{f.Key}: {f.Value.Message}"));
            rec.Phase("statuses", sw);
            Save(desiredKeys, plan.Ops.Select(x => x.Key).Distinct(StringComparer.Ordinal).ToList(), made);
            rec.Phase("save", sw);
            if (plan.Leaves is null)
                Watchers?.Track(this); // routes and ARP entries live in namespaces already watched
            rec.Phase("watch", sw);
            return Result(rec, failed.Count == 0, plan.Pending, plan.All);
        }
        catch (ConfigException e)
        {
            rec.Outcome = "refused";
            rec.Error = e.Message;
            return new TxnResult(false, "refused", e.Message, _revision, rec.Seq, [], [], e.Errors);
        }
        finally
        {
            rec.Ms = sw.Elapsed.TotalMilliseconds;
            Remember(rec);
            _linux.Flush();
            if (rec.Outcome is not ("dry-run" or "ok") || rec.Executed.Count != 0)
                LogTxn(_log, rec.Seq, rec.Source, rec.Kind, rec.Outcome, rec.Executed.Count, rec.Ms, rec.Error);
        }
    }

    /// <summary>The whole plan: expands the new desired state, resolves every item's dependencies
    /// (probing the conditions outside), and plans deletes, creates and updates in dependency order.</summary>
    private Plan PlanAll(Dictionary<string, (string Source, ConfigItem Item)> next, HashSet<string>? drifted, TxnRecord rec, Stopwatch sw)
    {
        var all = Expand(next);
        // Drifted items are re-applied: treat them (and what depends on them) as not applied.
        var applied = new Dictionary<string, Applied>(_applied, StringComparer.Ordinal);
        var cx = new Ctx(_linux, _pairs, applied) { Probe = true };
        var namespacesBefore = new HashSet<string>(_linux.NamedNamespaces(), StringComparer.Ordinal);
        rec.Phase("expand", sw);
        var newDeps = DepsOf(all);
        rec.Phase("deps", sw);
        var (target, pending) = Resolve(all, newDeps, cx, out HashSet<string> externalFail);
        rec.Phase("resolve", sw);
        cx.Probe = false;
        cx.TouchAll();
        cx.Target = target.ToDictionary(k => k, k => all[k].Item, StringComparer.Ordinal);

        // What goes: no longer applicable, changed beyond an update, or drifted; and with
        // each, everything applied that depends on it (a VETH's peer end goes with it).
        var gone = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (k, a) in applied)
            if (!target.Contains(k) || drifted?.Contains(k) == true
                || (!ReferenceEquals(a.Item.Value, all[k].Item.Value) && DocumentWriter.Canonical(a.Item.Value) != DocumentWriter.Canonical(all[k].Item.Value)
                    && _handlers[a.Item.Kind].NeedsRecreate(a.Item, all[k].Item)))
                gone.Add(k);
        // The dependencies as applied (only needed when something goes).
        Dictionary<string, List<Dep>> oldDeps = gone.Count == 0 ? []
            : DepsOf(applied.ToDictionary(kv => kv.Key, kv => ("", kv.Value.Item), StringComparer.Ordinal));
        if (gone.Count != 0)
        {
            var users = Users(oldDeps);
            var stack = new Stack<string>(gone);
            while (stack.TryPop(out string? k))
                foreach (string u in users.TryGetValue(k, out var l) ? l : [])
                    if (gone.Add(u))
                        stack.Push(u);
        }
        rec.Phase("gone", sw);
        var plan = new Plan
        {
            All = all, Target = target, Pending = pending, ExternalFail = externalFail, Deps = newDeps, Applied = applied, Cx = cx,
            NamespacesBefore = namespacesBefore,
        };
        var delOrder = Order(gone, oldDeps, k => applied[k].Item.Kind);
        delOrder.Reverse();
        foreach (string k in delOrder)
            plan.Ops.Add(new Op(OpKind.Delete, k, applied[k].Item, null));
        // What to create or update; only those need ordering (the rest is in place already).
        var touched = new HashSet<string>(StringComparer.Ordinal);
        foreach (string k in target)
        {
            ConfigItem n = all[k].Item;
            if (!applied.TryGetValue(k, out Applied? a) || gone.Contains(k)
                || (!ReferenceEquals(a.Item.Value, n.Value) && DocumentWriter.Canonical(a.Item.Value) != DocumentWriter.Canonical(n.Value)))
                touched.Add(k);
        }
        foreach (string k in Order(touched, newDeps, k => all[k].Item.Kind))
        {
            ConfigItem n = all[k].Item;
            plan.Ops.Add(!applied.TryGetValue(k, out Applied? a) || gone.Contains(k) ? new Op(OpKind.Create, k, null, n) : new Op(OpKind.Update, k, a.Item, n));
        }
        OrderMtu(plan.Ops, cx);
        rec.Phase("plan", sw);
        return plan;
    }

    /// <summary>A sub-interface's mirror (the pair of <c>port.vid</c>) never has a larger MTU than
    /// its parent's mirror, not even between two operations: when both change, a growing MTU is
    /// set on the parent first, a shrinking one on the sub-interface first.</summary>
    private static void OrderMtu(List<Op> ops, Ctx cx)
    {
        if (cx.Pairs is null)
            return;
        static LinuxInterface? Mirror(Op op) =>
            op.Kind != OpKind.Delete && op.New!.Value is LinuxInterface { Type: InterfaceType.TapToVpp, Mtu: > 0, Tap: not null } i ? i : null;
        for (int pass = 0; pass < 4; pass++) // QinQ: port.outer.inner under port.outer under port
        {
            bool moved = false;
            var byTap = new Dictionary<string, int>(StringComparer.Ordinal);
            for (int k = 0; k < ops.Count; k++)
                if (Mirror(ops[k]) is { } m)
                    byTap[m.Tap!.VppTapIfName] = k;
            foreach (var (tap, c) in byTap)
            {
                string? port = cx.Pairs.ByHostIf(tap)?.Port;
                int dot = port?.LastIndexOf('.') ?? -1;
                if (dot <= 0 || cx.Pairs.ByPort(port![..dot]) is not { } parentPair || !byTap.TryGetValue(parentPair.HostIf, out int p))
                    continue;
                LinuxInterface parent = Mirror(ops[p])!;
                uint was = ops[p].Old?.Value is LinuxInterface o ? o.Mtu : 0;
                bool shrinks = was != 0 && parent.Mtu < was;
                if (shrinks ? c > p : p > c)
                {
                    int from = shrinks ? c : p, to = shrinks ? p : c;
                    Op op = ops[from];
                    ops.RemoveAt(from);
                    ops.Insert(to, op);
                    moved = true;
                    break; // indexes changed: look again
                }
            }
            if (!moved)
                return;
        }
    }

    /// <summary>Most changes are a few routes or ARP entries, on which nothing depends: when the
    /// last transaction left everything applied, those are planned by themselves, without
    /// expanding and resolving the whole state (a one-route change among 14,000 keys costs
    /// what one route costs). Anything else (an interface, an item that would wait or fails
    /// validation, more than <see cref="MaxLeaves"/> changes) returns null: the whole plan.</summary>
    private Plan? PlanLeaves(Dictionary<string, (string Source, ConfigItem Item)> next, IReadOnlyList<ConfigItem>? input)
    {
        if (!_opts.Incremental || !_settled || _lastAll is null || _lastDeps is null || _retry.Count != 0 || Math.Abs(next.Count - _desired.Count) > MaxLeaves)
            return null;
        if (input is not null && input.Count > MaxLeaves)
            return null;
        List<string> leaves = [];
        int added = 0;
        foreach (var (k, v) in next)
        {
            bool had = _desired.TryGetValue(k, out var o);
            if (!had || o.Source != v.Source || !ReferenceEquals(o.Item, v.Item))
            {
                leaves.Add(k);
                added += had ? 0 : 1;
                if (leaves.Count > MaxLeaves)
                    return null;
            }
        }
        if (next.Count - added != _desired.Count) // some keys were removed
            foreach (string k in _desired.Keys)
                if (!next.ContainsKey(k))
                {
                    leaves.Add(k);
                    if (leaves.Count > MaxLeaves)
                        return null;
                }
        if (input is not null && input.Select(i => i.Key).Distinct(StringComparer.Ordinal).Count() != input.Count)
            return null; // duplicates: the whole validation says which
        var applied = new Dictionary<string, Applied>(_applied, StringComparer.Ordinal);
        var cx = new Ctx(_linux, _pairs, applied) { Probe = true };
        var declared = new DeclaredView(_lastAll);
        var deps = new Dictionary<string, List<Dep>>(StringComparer.Ordinal);
        var plan = new Plan
        {
            All = _lastAll, Target = _lastTarget, Pending = new(StringComparer.Ordinal), ExternalFail = _lastExternalFail, Deps = deps,
            Applied = applied, Cx = cx, Leaves = leaves,
        };
        var creates = new List<Op>();
        foreach (string k in leaves)
        {
            ConfigItem? n = next.TryGetValue(k, out var nv) ? nv.Item : null;
            ConfigItem? was = _desired.TryGetValue(k, out var ov) ? ov.Item : null;
            if ((n ?? was)!.Kind is not (ItemKind.Route or ItemKind.Arp))
                return null; // a key names its kind: the old and new values are of one kind
            applied.TryGetValue(k, out Applied? a);
            if (n is null)
            {
                if (a is not null)
                    plan.Ops.Add(new Op(OpKind.Delete, k, a.Item, null));
                continue;
            }
            if (!Valid.TryGetValue(n.Value, out _))
            {
                var errors = new List<ConfigError>();
                _handlers[n.Kind].Validate(n, k, errors);
                if (errors.Count != 0)
                    return null;
                Valid.AddOrUpdate(n.Value, true);
            }
            // Every dependency must be declared and applied, every outside condition met; an
            // item that would wait is left to the whole plan (which says why).
            List<Dep> d = DepsOfItem(n, _lastAll, declared);
            foreach (Dep dep in d)
                if (dep.Key is not null ? !_lastTarget.Contains(dep.Key) || !applied.ContainsKey(dep.Key) : dep.External?.Invoke(cx) is not null)
                    return null;
            deps[k] = d;
            if (a is null)
                creates.Add(new Op(OpKind.Create, k, null, n));
            else if (!ReferenceEquals(a.Item.Value, n.Value) && DocumentWriter.Canonical(a.Item.Value) != DocumentWriter.Canonical(n.Value))
            {
                if (_handlers[n.Kind].NeedsRecreate(a.Item, n))
                {
                    plan.Ops.Add(new Op(OpKind.Delete, k, a.Item, null));
                    creates.Add(new Op(OpKind.Create, k, null, n));
                }
                else
                    creates.Add(new Op(OpKind.Update, k, a.Item, n));
            }
        }
        cx.Probe = false;
        cx.TouchAll();
        foreach (Op op in creates)
            cx.Target[op.Key] = op.New!;
        // Deletes in the whole plan's order (the reverse of creation: kind, then key, descending).
        plan.Ops.Sort((x, y) => (Array.IndexOf(KindOrder, y.Old!.Kind), y.Key).CompareTo((Array.IndexOf(KindOrder, x.Old!.Kind), x.Key)));
        creates.Sort((x, y) => (Array.IndexOf(KindOrder, x.New!.Kind), x.Key).CompareTo((Array.IndexOf(KindOrder, y.New!.Kind), y.Key)));
        plan.Ops.AddRange(creates);
        return plan;
    }

    /// <summary>Changes planned by themselves (<see cref="PlanLeaves"/>) at most.</summary>
    private const int MaxLeaves = 64;

    // The last transaction's keys with their sources, and whether it left everything applied.
    private Dictionary<string, (string Source, ConfigItem Item)>? _lastAll;
    private bool _settled;

    /// <summary>For each key, the keys that depend on it.</summary>
    private static Dictionary<string, List<string>> Users(Dictionary<string, List<Dep>> deps)
    {
        var users = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        foreach (var (k, list) in deps)
            foreach (Dep d in list)
                if (d.Key is not null && d.Key != k)
                    (users.TryGetValue(d.Key, out var u) ? u : users[d.Key] = []).Add(k);
        return users;
    }

    /// <summary>Keys whose desired entry differs between two states (added, removed, or another value or source).</summary>
    /// <param name="among">Null: every key; else only these are looked at (the others are known the same).</param>
    private static List<string> ChangedKeys(Dictionary<string, (string Source, ConfigItem Item)> a, Dictionary<string, (string Source, ConfigItem Item)> b,
        IEnumerable<string>? among = null)
    {
        var keys = new List<string>();
        foreach (string k in among ?? b.Keys.Concat(a.Keys.Where(x => !b.ContainsKey(x))))
        {
            bool inA = a.TryGetValue(k, out var o), inB = b.TryGetValue(k, out var v);
            if (inA != inB || (inA && (o.Source != v.Source
                || (!ReferenceEquals(o.Item, v.Item) && DocumentWriter.Canonical(o.Item.Value) != DocumentWriter.Canonical(v.Item.Value)))))
                keys.Add(k);
        }
        return keys;
    }

    private static List<ConfigError> Errors(string e) => [new ConfigError("", e)];

    /// <summary>Executes the plan. Strict: stops at the first failure (the caller reverts).
    /// Best effort: a failed item's dependants are skipped, the rest goes on.</summary>
    private string? Execute(List<Op> ops, Ctx cx, Dictionary<string, Applied> applied, bool bestEffort, TxnRecord rec,
        Dictionary<string, LinuxException> failed, Stack<(string, Action)> undo, HashSet<string> skip)
    {
        Dictionary<string, List<Dep>>? deps = null;
        foreach (Op op in ops)
        {
            if (skip.Contains(op.Key))
            {
                if (op.Kind != OpKind.Delete)
                    applied.Remove(op.Key);
                rec.Executed.Add(new OpRecord(op.Kind.ToString().ToLowerInvariant(), op.Key, "skipped", "a dependency failed", 0));
                continue;
            }
            var t = Stopwatch.StartNew();
            IHandler h = _handlers[(op.New ?? op.Old)!.Kind];
            try
            {
                switch (op.Kind)
                {
                    case OpKind.Delete:
                    {
                        cx.OldView = true;
                        Applied a = applied[op.Key];
                        h.Delete(a, cx);
                        applied.Remove(op.Key);
                        undo.Push(($"re-create {op.Key}", () =>
                        {
                            cx.OldView = false;
                            applied[op.Key] = new Applied(a.Item, h.Create(a.Item, cx));
                        }));
                        break;
                    }
                    case OpKind.Create:
                    {
                        cx.OldView = false;
                        JsonObject saved = h.Create(op.New!, cx);
                        var a = new Applied(op.New!, saved);
                        applied[op.Key] = a;
                        undo.Push(($"delete {op.Key}", () =>
                        {
                            cx.OldView = false;
                            h.Delete(a, cx);
                            applied.Remove(op.Key);
                        }));
                        break;
                    }
                    default:
                    {
                        cx.OldView = false;
                        Applied a = applied[op.Key];
                        h.Update(op.Old!, op.New!, a, cx);
                        a.Item = op.New!;
                        undo.Push(($"restore {op.Key}", () =>
                        {
                            cx.OldView = false;
                            h.Update(op.New!, op.Old!, a, cx);
                            a.Item = op.Old!;
                        }));
                        break;
                    }
                }
                rec.Executed.Add(new OpRecord(op.Kind.ToString().ToLowerInvariant(), op.Key, "ok", "", t.Elapsed.TotalMilliseconds));
            }
            catch (LinuxException e)
            {
                rec.Executed.Add(new OpRecord(op.Kind.ToString().ToLowerInvariant(), op.Key, "failed", e.Message, t.Elapsed.TotalMilliseconds));
                cx.TouchAll();
                // Strict mode reverts for what this transaction asks; an item that had already
                // failed before (and is only being retried here) stays failed instead.
                bool retried = _status.TryGetValue(op.Key, out ItemStatus? was) && was.State is ItemState.Failed or ItemState.Retrying
                    && op.New is not null && applied.ContainsKey(op.Key) is false && SameValue(op.Key, op.New);
                if (!bestEffort && !retried)
                    return $"{op.Kind.ToString().ToLowerInvariant()} {op.Key}: {e.Message}";
                failed[op.Key] = e;
                if (op.Kind == OpKind.Delete)
                    applied.Remove(op.Key); // it is gone from the desired state either way
                deps ??= DepsOf(cx.Target.ToDictionary(kv => kv.Key, kv => ("", kv.Value), StringComparer.Ordinal));
                // Everything that depends on it, directly or not, waits.
                var stack = new Stack<string>([op.Key]);
                while (stack.TryPop(out string? failedKey))
                    foreach (var (k, list) in deps)
                        if (list.Any(d => d.Key == failedKey) && skip.Add(k))
                            stack.Push(k);
            }
        }
        return null;
    }

    /// <summary>Is <paramref name="item"/> what the desired state already held for its key (not a change of this transaction)?</summary>
    private bool SameValue(string key, ConfigItem item)
    {
        ConfigItem? before = _desired.TryGetValue(key, out var d) ? d.Item
            : _lastDeps is not null && _status.ContainsKey(key) ? Expand(_desired).GetValueOrDefault(key).Item : null;
        return before is not null && DocumentWriter.Canonical(before.Value) == DocumentWriter.Canonical(item.Value);
    }

    private int Revert(Stack<(string What, Action Do)> undo, TxnRecord rec, Ctx cx)
    {
        int n = 0;
        cx.TouchAll();
        while (undo.TryPop(out var u))
        {
            var t = Stopwatch.StartNew();
            try
            {
                u.Do();
                rec.Executed.Add(new OpRecord("revert", u.What, "ok", "", t.Elapsed.TotalMilliseconds));
            }
            catch (LinuxException e)
            {
                rec.Executed.Add(new OpRecord("revert", u.What, "failed", e.Message, t.Elapsed.TotalMilliseconds));
                LogRevertStepFailed(_log, u.What, e.Message);
            }
            n++;
        }
        return n;
    }

    private TxnResult Result(TxnRecord rec, bool ok, Dictionary<string, string> pending, Dictionary<string, (string Source, ConfigItem Item)> all,
        List<ConfigError>? errors = null)
    {
        var p = pending.Select(kv => new ItemStatus(kv.Key, all[kv.Key].Item.Kind.ToString(), ItemState.Pending, kv.Value, all[kv.Key].Source,
            all[kv.Key].Item.Derived, DateTime.UtcNow)).ToList();
        return new TxnResult(ok, rec.Outcome, rec.Error, _revision, rec.Seq, [.. rec.Executed.Count != 0 ? rec.Executed : rec.Planned], p, errors ?? []);
    }

    /// <param name="only">Null: every key; else only these changed.</param>
    private void UpdateStatuses(Dictionary<string, (string Source, ConfigItem Item)> all, Dictionary<string, string> pending, Dictionary<string, LinuxException> failed,
        IReadOnlyCollection<string>? only = null)
    {
        foreach (string k in (only ?? _status.Keys).Where(k => !all.ContainsKey(k) && !_invalid.ContainsKey(k) && _status.ContainsKey(k)).ToList())
        {
            ItemStatus s = _status[k];
            _status.Remove(k);
            Changed?.Invoke(new StateChange(s, true));
        }
        foreach (string k in only ?? (IEnumerable<string>)all.Keys)
        {
            if (!all.TryGetValue(k, out var v))
                continue;
            var (src, item) = v;
            if (failed.TryGetValue(k, out LinuxException? e))
                SetStatus(k, item.Kind.ToString(), _retry.ContainsKey(k) ? ItemState.Retrying : ItemState.Failed, e.Message, src, item.Derived);
            else if (pending.TryGetValue(k, out string? why))
                SetStatus(k, item.Kind.ToString(), ItemState.Pending, why, src, item.Derived);
            else if (_applied.ContainsKey(k))
                SetStatus(k, item.Kind.ToString(), ItemState.Configured, "", src, item.Derived);
        }
    }

    private void SetStatus(string key, string kind, ItemState state, string reason, string source, bool derived)
    {
        if (_status.TryGetValue(key, out ItemStatus? old) && old.State == state && old.Reason == reason && old.Source == source)
            return;
        var s = new ItemStatus(key, kind, state, reason, source, derived, DateTime.UtcNow);
        _status[key] = s;
        Changed?.Invoke(new StateChange(s, false));
    }

    /// <summary>Applied items (in the given namespaces, or all) that Linux no longer holds as declared.</summary>
    private HashSet<string> Drifted(HashSet<string>? namespaces)
    {
        var cx = new Ctx(_linux, _pairs, _applied) { Target = _applied.ToDictionary(kv => kv.Key, kv => kv.Value.Item, StringComparer.Ordinal) };
        var drifted = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (k, a) in _applied)
        {
            IHandler h = _handlers[a.Item.Kind];
            if (namespaces is not null && (h.Namespace(a.Item, cx) is not string ns || !namespaces.Contains(ns)))
                continue;
            if (h.Verify(a.Item, cx) is string diff)
            {
                drifted.Add(k);
                LogDriftDetail(_log, k, diff);
            }
        }
        return drifted;
    }

    /// <summary>The namespaces holding applied items (watched for drift).</summary>
    internal HashSet<string> ManagedNamespaces()
    {
        var cx = new Ctx(_linux, _pairs, _applied) { Target = _applied.ToDictionary(kv => kv.Key, kv => kv.Value.Item, StringComparer.Ordinal) };
        var set = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (_, a) in _applied)
            if (a.Item.Kind == ItemKind.Interface && _handlers[a.Item.Kind].Namespace(a.Item, cx) is string ns)
                set.Add(ns); // everything else lives in an interface's namespace
        return set;
    }

    /// <summary>The drift watcher (set by the host; null: no watching).</summary>
    public DriftWatchers? Watchers { get; set; }

    // ---- reads ----------------------------------------------------------------------------------

    public ConfigDocument Get(string? source = null)
    {
        lock (_gate)
            return DocumentWriter.ToDocument(_desired.Values.Where(v => source is null || v.Source == source).OrderBy(v => v.Item.Key, StringComparer.Ordinal).Select(v => v.Item));
    }

    public IReadOnlyList<ItemStatus> Status(string? prefix = null)
    {
        lock (_gate)
            return [.. _status.Values.Where(s => prefix is null || s.Key.StartsWith(prefix, StringComparison.Ordinal)).OrderBy(s => s.Key, StringComparer.Ordinal)];
    }

    public IReadOnlyList<TxnRecord> History()
    {
        lock (_gate)
            return [.. _history];
    }

    public IReadOnlyList<Revision> Revisions()
    {
        lock (_gate)
            return [.. _revisions];
    }

    /// <summary>Key by key: what revision <paramref name="to"/> (default: the current desired
    /// state) adds, removes and changes relative to revision <paramref name="from"/>.</summary>
    public JsonObject Diff(int from, int? to)
    {
        lock (_gate)
        {
            var a = RevisionItems(from);
            var b = to is int t ? RevisionItems(t) : _desired.Values.Select(v => v.Item).ToDictionary(i => i.Key, StringComparer.Ordinal);
            return Diff(a, b, $"revision {from}", to is null ? "current" : $"revision {to}");
        }
    }

    /// <summary>What applying a document (as an update, or with replace as the source's whole
    /// state) would change in the desired state.</summary>
    public JsonObject Diff(string source, ConfigDocument doc, bool replace)
    {
        lock (_gate)
        {
            var a = _desired.Values.Select(v => v.Item).ToDictionary(i => i.Key, StringComparer.Ordinal);
            var b = new Dictionary<string, ConfigItem>(a, StringComparer.Ordinal);
            if (replace)
                foreach (var k in _desired.Where(kv => kv.Value.Source == source).Select(kv => kv.Key))
                    b.Remove(k);
            foreach (ConfigItem i in doc.Items())
                b[i.Key] = i;
            return Diff(a, b, "current", "document");
        }
    }

    private Dictionary<string, ConfigItem> RevisionItems(int rev)
    {
        if (rev == 0)
            return new(StringComparer.Ordinal);
        Revision r = _revisions.FirstOrDefault(x => x.Number == rev) ?? throw new ConfigException($"no revision {rev}");
        return r.Items.Select(x => x.Item).ToDictionary(i => i.Key, StringComparer.Ordinal);
    }

    private static JsonObject Diff(Dictionary<string, ConfigItem> a, Dictionary<string, ConfigItem> b, string fromName, string toName)
    {
        var added = new JsonArray();
        var removed = new JsonArray();
        var changed = new JsonArray();
        foreach (var (k, i) in b.OrderBy(x => x.Key, StringComparer.Ordinal))
        {
            if (!a.TryGetValue(k, out ConfigItem? old))
                added.Add(new JsonObject { ["key"] = k, ["value"] = DocumentWriter.Item(i.Value) });
            else if (DocumentWriter.Canonical(old.Value) != DocumentWriter.Canonical(i.Value))
                changed.Add(new JsonObject { ["key"] = k, ["from"] = DocumentWriter.Item(old.Value), ["to"] = DocumentWriter.Item(i.Value) });
        }
        foreach (var (k, i) in a.OrderBy(x => x.Key, StringComparer.Ordinal))
            if (!b.ContainsKey(k))
                removed.Add(new JsonObject { ["key"] = k, ["value"] = DocumentWriter.Item(i.Value) });
        return new JsonObject { ["from"] = fromName, ["to"] = toName, ["added"] = added, ["removed"] = removed, ["changed"] = changed };
    }

    /// <summary>The dependency graph in graphviz dot: one node per key, coloured by state.</summary>
    public string Graph()
    {
        lock (_gate)
        {
            var all = Expand(_desired);
            var deps = DepsOf(all);
            var sb = new StringBuilder("digraph lcpd_config {\n  rankdir=LR;\n  node [shape=box, style=filled, fontname=monospace];\n");
            foreach (var (k, _) in all.OrderBy(x => x.Key, StringComparer.Ordinal))
            {
                ItemState st = _status.TryGetValue(k, out ItemStatus? s) ? s.State : ItemState.Pending;
                string color = st switch { ItemState.Configured => "palegreen", ItemState.Pending => "khaki", ItemState.Retrying => "orange", _ => "salmon" };
                sb.Append("  \"").Append(k).Append("\" [fillcolor=").Append(color).Append(", label=\"").Append(k).Append("\\n").Append(st.ToString().ToUpperInvariant()).Append("\"];\n");
            }
            foreach (var (k, list) in deps.OrderBy(x => x.Key, StringComparer.Ordinal))
                foreach (Dep d in list)
                {
                    if (d.Key is not null)
                        sb.Append("  \"").Append(k).Append("\" -> \"").Append(d.Key).Append('"').Append(d.Ordered ? "" : " [style=dashed]").Append(";\n");
                }
            return sb.Append("}\n").ToString();
        }
    }

    /// <summary>What Linux runs in the namespaces the desired state names: links with their
    /// addresses, permanent neighbours and main-table routes, each marked with the key that
    /// manages it, or OBTAINED (found in Linux, not lcpd's: never touched).</summary>
    public JsonObject Retrieve()
    {
        lock (_gate)
        {
            try
            {
                var cx = new Ctx(_linux, _pairs, _applied) { Target = _applied.ToDictionary(kv => kv.Key, kv => kv.Value.Item, StringComparer.Ordinal) };
                var namespaces = new SortedSet<string>(ManagedNamespaces(), StringComparer.Ordinal) { "" };
                var owner = new Dictionary<(string Ns, string Name), string>();
                foreach (var (k, a) in _applied)
                    if (a.Item.Value is LinuxInterface li && cx.NamespaceOf(li, out _) is string ns)
                        owner[(ns, InterfaceHandler.LinuxName(li))] = k;
                var result = new JsonArray();
                foreach (string ns in namespaces)
                {
                    var links = new JsonArray();
                    var addrsByIf = new Dictionary<int, List<string>>();
                    foreach (LinkState l in _linux.Links(ns))
                    {
                        string key = owner.TryGetValue((ns, l.Name), out string? o) ? o : "";
                        links.Add(new JsonObject
                        {
                            ["name"] = l.Name, ["index"] = l.Index, ["kind"] = l.Kind, ["mtu"] = l.Mtu, ["mac"] = Mac.Format(l.Mac), ["up"] = l.Up,
                            ["addresses"] = new JsonArray([.. _linux.Addresses(ns, l.Index).Select(x => (JsonNode)x)]),
                            ["state"] = key.Length != 0 ? "CONFIGURED" : "OBTAINED", ["key"] = key,
                        });
                    }
                    var neigh = new JsonArray([.. _linux.Neighbors(ns).Where(n => (n.State & 0x80) != 0).Select(n => (JsonNode)new JsonObject
                    {
                        ["ifindex"] = n.IfIndex, ["ip"] = n.Ip, ["mac"] = Mac.Format(n.Mac),
                    })]);
                    var routes = new JsonArray([.. _linux.Routes(ns).Select(r => (JsonNode)new JsonObject
                    {
                        ["dst"] = r.Dst, ["oif"] = r.Oif, ["gw"] = r.Gw, ["metric"] = r.Metric, ["protocol"] = r.Protocol,
                        ["state"] = r.Protocol == NetlinkLinux.Protocol ? "CONFIGURED" : "OBTAINED",
                    })]);
                    result.Add(new JsonObject { ["namespace"] = ns.Length == 0 ? "(lcpd)" : ns, ["links"] = links, ["permanent_neighbors"] = neigh, ["routes"] = routes });
                }
                return new JsonObject { ["namespaces"] = result };
            }
            finally
            {
                _linux.Flush();
            }
        }
    }

    // ---- logging ------------------------------------------------------------------------------

    [LoggerMessage(EventId = 300, Level = LogLevel.Information, Message = "config txn {Seq} from {Source} ({Kind}): {Outcome}, {Ops} operation(s) in {Ms:F1} ms {Error}")]
    private static partial void LogTxn(ILogger l, long seq, string source, string kind, string outcome, int ops, double ms, string error);

    [LoggerMessage(EventId = 301, Level = LogLevel.Warning, Message = "config txn {Seq} failed and was reverted ({Undone} operation(s) undone): {Error}")]
    private static partial void LogReverted(ILogger l, long seq, string error, int undone);

    [LoggerMessage(EventId = 302, Level = LogLevel.Error, Message = "config revert step failed: {What}: {Error}")]
    private static partial void LogRevertStepFailed(ILogger l, string what, string error);

    [LoggerMessage(EventId = 303, Level = LogLevel.Warning, Message = "config: revision {Revision} was not confirmed in time: reverting it")]
    private static partial void LogConfirmTimeout(ILogger l, int revision);

    [LoggerMessage(EventId = 304, Level = LogLevel.Information, Message = "config: revision {Revision} confirmed")]
    private static partial void LogConfirmed(ILogger l, int revision);

    [LoggerMessage(EventId = 305, Level = LogLevel.Error, Message = "config: reverting unconfirmed revision {Revision} failed: {Error}")]
    private static partial void LogRevertFailed(ILogger l, int revision, string error);

    [LoggerMessage(EventId = 306, Level = LogLevel.Warning, Message = "config drift: {Key} changed in Linux behind lcpd: {What}")]
    private static partial void LogDrift(ILogger l, string key, string what);

    [LoggerMessage(EventId = 307, Level = LogLevel.Debug, Message = "config drift detail: {Key}: {Diff}")]
    private static partial void LogDriftDetail(ILogger l, string key, string diff);

    [LoggerMessage(EventId = 308, Level = LogLevel.Warning, Message = "config housekeeping failed: {Error}")]
    private static partial void LogTickFailed(ILogger l, string error);
}
