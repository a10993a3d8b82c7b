using System.Diagnostics.Tracing;

namespace LinuxCp.Management.Observe;

/// <summary>Watches the runtime's own GC events: why each collection started (generation,
/// trigger, background or blocking) and how long the runtime held every managed thread —
/// the managed lcores included — suspended. A collection is exactly what stalls a worker, so
/// the longest suspension is reported next to the workers' loop gaps.</summary>
public sealed class GcMonitor : EventListener
{
    // Microsoft-Windows-DotNETRuntime event ids (GC keyword).
    private const int GcStart = 1, RestartEeEnd = 3, SuspendEeBegin = 9;

    // GC start reasons as the runtime numbers them (gc_reason).
    private static readonly string[] Reasons =
    [
        "alloc-small", "induced", "low-memory", "empty", "alloc-large", "oos-small", "oos-large",
        "induced-noforce", "gc-stress", "low-memory-blocking", "induced-compacting", "low-memory-host",
        "pm-full", "low-memory-host-blocking", "bgc-tuning-soh", "bgc-tuning-loh", "bgc-stepping",
        "induced-aggressive",
    ];

    private readonly object _sync = new();
    private readonly Dictionary<string, long> _byReason = [];
    private long _suspendStartTicks;
    private long _suspensions;
    private double _maxSuspendMs;
    private double _totalSuspendMs;
    private string _last = "";

    protected override void OnEventSourceCreated(EventSource eventSource)
    {
        if (eventSource.Name == "Microsoft-Windows-DotNETRuntime")
            EnableEvents(eventSource, EventLevel.Informational, (EventKeywords)0x1);
    }

    protected override void OnEventWritten(EventWrittenEventArgs eventData)
    {
        EventWrittenEventArgs e = eventData;
        switch (e.EventId)
        {
            case SuspendEeBegin:
                Interlocked.Exchange(ref _suspendStartTicks, e.TimeStamp.Ticks);
                break;
            case RestartEeEnd:
                long start = Interlocked.Exchange(ref _suspendStartTicks, 0);
                if (start == 0)
                    break;
                double ms = (e.TimeStamp.Ticks - start) / (double)TimeSpan.TicksPerMillisecond;
                lock (_sync)
                {
                    _suspensions++;
                    _totalSuspendMs += ms;
                    if (ms > _maxSuspendMs)
                        _maxSuspendMs = ms;
                }
                break;
            case GcStart:
                uint depth = Field(e, "Depth"), reason = Field(e, "Reason"), type = Field(e, "Type");
                string name = $"gen{depth} {(reason < Reasons.Length ? Reasons[reason] : reason.ToString())}{(type == 1 ? " background" : "")}";
                lock (_sync)
                {
                    _byReason[name] = _byReason.GetValueOrDefault(name) + 1;
                    _last = name;
                }
                break;
        }
    }

    private static uint Field(EventWrittenEventArgs e, string name)
    {
        int i = e.PayloadNames?.IndexOf(name) ?? -1;
        return i >= 0 && e.Payload?[i] is object v ? Convert.ToUInt32(v, System.Globalization.CultureInfo.InvariantCulture) : 0;
    }

    /// <summary>Collections by "generation trigger [background]", the last one, and the
    /// runtime's thread suspensions (count, longest, total).</summary>
    public (IReadOnlyDictionary<string, long> ByReason, string Last, long Suspensions, double MaxSuspendMs, double TotalSuspendMs) Read()
    {
        lock (_sync)
            return (new Dictionary<string, long>(_byReason), _last, _suspensions, _maxSuspendMs, _totalSuspendMs);
    }

    public void Reset()
    {
        lock (_sync)
        {
            _byReason.Clear();
            _suspensions = 0;
            _maxSuspendMs = 0;
            _totalSuspendMs = 0;
        }
    }
}
