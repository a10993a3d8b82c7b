using System.Text.Json.Nodes;
using LinuxCp.Config.Model;

namespace LinuxCp.Config.Engine;

/// <summary>The state of one key (user or derived).</summary>
public enum ItemState { Configured, Pending, Failed, Retrying, Invalid, Obtained }

public sealed record ItemStatus(string Key, string Kind, ItemState State, string Reason, string Source, bool Derived, DateTime Since)
{
    public string StateName => State.ToString().ToUpperInvariant();
}

/// <summary>How a transaction is to be run.</summary>
public sealed record TxnOptions
{
    /// <summary>The source replaces all it declared before with this input (full resync of that source).</summary>
    public bool Replace { get; init; }
    public bool DryRun { get; init; }
    /// <summary>Keep what succeeded when something fails (retrying what can be retried) instead of reverting all.</summary>
    public bool BestEffort { get; init; }
    /// <summary>&gt; 0: revert by itself unless confirmed within this many seconds.</summary>
    public int ConfirmSeconds { get; init; }
    /// <summary>Field paths of the input's items, for error messages.</summary>
    public IReadOnlyDictionary<object, string>? Paths { get; init; }
}

/// <summary>One planned or executed operation.</summary>
public sealed record OpRecord(string Op, string Key, string Result, string Error, double Ms);

/// <summary>A transaction as history keeps it.</summary>
public sealed record TxnRecord
{
    public long Seq { get; init; }
    public DateTime Time { get; init; }
    public string Source { get; init; } = "";
    public string Kind { get; init; } = "";
    public string Outcome { get; set; } = "";
    public string Error { get; set; } = "";
    public int Revision { get; set; }
    public double Ms { get; set; }
    public int InputItems { get; init; }
    public JsonNode? Input { get; init; }
    public List<OpRecord> Planned { get; } = [];
    public List<OpRecord> Executed { get; } = [];
    /// <summary>Where the time went: milliseconds per phase of the transaction.</summary>
    public Dictionary<string, double> Phases { get; } = [];
    private double _mark;

    public void Phase(string name, System.Diagnostics.Stopwatch sw)
    {
        double now = sw.Elapsed.TotalMilliseconds;
        if (name != "start")
            Phases[name] = Math.Round(now - _mark, 2);
        _mark = now;
    }

    /// <summary>How many operations there were (the lists keep the first ones).</summary>
    public int PlannedCount { get; set; }
    public int ExecutedCount { get; set; }
}

/// <summary>A transaction's answer.</summary>
public sealed record TxnResult(bool Ok, string Outcome, string Error, int Revision, long Seq, IReadOnlyList<OpRecord> Ops,
    IReadOnlyList<ItemStatus> Pending, IReadOnlyList<ConfigError> Errors);

/// <summary>A committed desired state.</summary>
public sealed record Revision(int Number, DateTime Time, string Source, string Kind, IReadOnlyList<(string Source, ConfigItem Item)> Items);

/// <summary>Raised whenever a key's state changes (for config watch and etcd status).</summary>
public sealed record StateChange(ItemStatus Status, bool Removed);
