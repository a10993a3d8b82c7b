namespace LinuxCp.Management.Observe;

/// <summary>What the dataplane can only count, said in the log: received frames that found no
/// free mbuf (the NIC's <c>rx_nombuf</c>: the packet pool is too small for the load, or something
/// holds mbufs) and a pool close to empty. Ticked once a second from a control thread; each port
/// and the pool get at most one warning a minute, which carries the count since the last one, the
/// pool's state and the option to change. The counters stay in <c>show interfaces</c> (drops)
/// and <c>show buffers</c>.</summary>
public sealed class ResourceWatch
{
    public readonly record struct PortSample(string Port, ulong NoMbuf);

    public readonly record struct PoolSample(string Pool, long Size, long Available);

    private sealed class PortState
    {
        public ulong Last;
        public ulong Unreported;
        public long? LastWarnMs;
    }

    private readonly Func<IEnumerable<PortSample>> _ports;
    private readonly Func<PoolSample> _pool;
    private readonly Action<string> _warn;
    private readonly Func<long> _nowMs;
    private readonly Dictionary<string, PortState> _state = [];
    private long? _poolWarnMs;
    private bool _poolLow;

    /// <summary>Once a minute at most, per port and for the pool.</summary>
    public const long IntervalMs = 60_000;

    /// <summary>The pool counts as nearly empty below this fraction of its size free.</summary>
    public const int LowDivisor = 16;

    public ResourceWatch(Func<IEnumerable<PortSample>> ports, Func<PoolSample> pool, Action<string> warn, Func<long>? nowMs = null)
    {
        _ports = ports;
        _pool = pool;
        _warn = warn;
        _nowMs = nowMs ?? (() => Environment.TickCount64);
    }

    /// <summary>Frames refused for lack of mbufs since start, all ports (for tests and metrics).</summary>
    public ulong NoMbufTotal { get; private set; }

    private readonly HashSet<string> _seen = []; // (reused: this runs every second)

    private void ForgetUnseen()
    {
        foreach (string gone in _state.Keys.Where(k => !_seen.Contains(k)).ToList())
            _state.Remove(gone);
    }

    public void Tick()
    {
        long now = _nowMs();
        PoolSample pool = _pool();
        HashSet<string> seen = _seen;
        seen.Clear();
        foreach (PortSample p in _ports())
        {
            seen.Add(p.Port);
            if (!_state.TryGetValue(p.Port, out PortState? st))
            {
                st = new PortState(); // counters start at 0 with the port: frames refused before the first tick count
                _state[p.Port] = st;
            }
            // A counter that went backwards was reset (port re-created): start again from it.
            ulong delta = p.NoMbuf >= st.Last ? p.NoMbuf - st.Last : p.NoMbuf;
            st.Last = p.NoMbuf;
            NoMbufTotal += delta;
            st.Unreported += delta;
            // Drops held back within the minute are reported once it has passed, new drops or not.
            if (st.Unreported == 0 || st.LastWarnMs is long lw && now - lw < IntervalMs)
                continue;
            _warn($"port {p.Port}: {st.Unreported} received frame(s) found no free mbuf and were dropped " +
                  $"(pool {pool.Pool}: {pool.Available} of {pool.Size} free); the packet pool is too small for this load " +
                  $"or something holds mbufs: raise --mbufs (now {pool.Size}), see lcpctl show buffers (logged once a minute per port)");
            st.Unreported = 0;
            st.LastWarnMs = now;
        }
        if (_state.Count > seen.Count)
            ForgetUnseen();

        bool low = pool.Size > 0 && pool.Available < pool.Size / LowDivisor;
        if (low && !_poolLow && (_poolWarnMs is not long pw || now - pw >= IntervalMs))
        {
            _warn($"pool {pool.Pool}: {pool.Available} of {pool.Size} mbufs free (below 1/{LowDivisor}): " +
                  "receive queues will start dropping; raise --mbufs or see lcpctl show buffers (logged once a minute)");
            _poolWarnMs = now;
        }
        _poolLow = low;
    }
}
