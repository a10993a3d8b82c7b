namespace LinuxCp.Dataplane.Fib;

/// <summary>A managed reference backend for unit tests and benchmarks of the control plane: a
/// dictionary per instance, longest-prefix match by probing every length. It enforces the same
/// limits as DPDK's structures — at most <see cref="FibCapacity.Routes"/> prefixes, and for
/// prefixes longer than /24 at most <see cref="FibCapacity.Tbl8"/> distinct /24 blocks (what a
/// DIR-24-8 tbl8 group holds) — so exhaustion and growth can be tested without DPDK.</summary>
public sealed class ManagedFibBackend : IFibBackend
{
    private sealed class Table(string name, bool v6, FibCapacity cap)
    {
        public readonly string Name = name;
        public readonly bool V6 = v6;
        public readonly FibCapacity Capacity = cap;
        public readonly Dictionary<(UInt128, byte), ushort> Routes = [];
        public readonly Dictionary<UInt128, int> Tbl8Blocks = [];
    }

    private readonly List<Table?> _tables = [null]; // handle 0 is "none"

    /// <summary>Instances created and not freed.</summary>
    public int Live => _tables.Count(t => t is not null);

    /// <summary>Adds and deletes asked of any instance (tests: a change that should not touch routes).</summary>
    public long Writes => Interlocked.Read(ref _writes);
    private long _writes; // (a shadow load writes the other copy from a helper thread)

    /// <summary>When set, <see cref="Create"/> fails with ENOMEM (an out-of-memory test).</summary>
    public bool FailCreate { get; set; }

    public long EstimateBytes(bool v6, FibCapacity c) => 64L * c.Routes + 512L * c.Tbl8;

    public uint MaxTbl8(bool v6) => v6 ? RteFibBackend.Tbl8Limit6 : RteFibBackend.Tbl8Limit4;

    public nint Create(string name, bool v6, FibCapacity c, out int errno)
    {
        if (FailCreate)
        {
            errno = 12;
            return 0;
        }
        // rte_fib_create refuses a name a live instance has (EEXIST): so does this.
        if (_tables.Any(t => t is not null && t.Name == name))
        {
            errno = 17;
            return 0;
        }
        errno = 0;
        _tables.Add(new Table(name, v6, c));
        return _tables.Count - 1;
    }

    public void Free(nint fib, bool v6)
    {
        if (fib > 0 && fib < _tables.Count)
            _tables[(int)fib] = null;
    }

    private Table Get(nint fib) => _tables[(int)fib] ?? throw new InvalidOperationException($"FIB instance {fib} was freed");

    private static UInt128 Block(in FibKey p) => p.V6 ? p.Address >> 104 : p.Address >> 8;

    public int Add(nint fib, in FibKey p, ushort nextHop)
    {
        Interlocked.Increment(ref _writes);
        Table t = Get(fib);
        var key = (p.Address, p.Length);
        if (t.Routes.ContainsKey(key))
        {
            t.Routes[key] = nextHop;
            return 0;
        }
        if (t.Routes.Count >= t.Capacity.Routes)
            return -28; // ENOSPC
        bool deep = p.Length > (p.V6 ? 24 : 24);
        if (deep)
        {
            UInt128 b = Block(p);
            t.Tbl8Blocks.TryGetValue(b, out int users);
            if (users == 0 && t.Tbl8Blocks.Count >= t.Capacity.Tbl8)
                return -28;
            t.Tbl8Blocks[b] = users + 1;
        }
        t.Routes[key] = nextHop;
        return 0;
    }

    public int Delete(nint fib, in FibKey p)
    {
        Interlocked.Increment(ref _writes);
        Table t = Get(fib);
        if (!t.Routes.Remove((p.Address, p.Length)))
            return -2; // ENOENT
        if (p.Length > 24)
        {
            UInt128 b = Block(p);
            if (--t.Tbl8Blocks[b] == 0)
                t.Tbl8Blocks.Remove(b);
        }
        return 0;
    }

    public bool TryGetExact(nint fib, in FibKey p, out ushort nextHop) => Get(fib).Routes.TryGetValue((p.Address, p.Length), out nextHop);

    public ushort Lookup(nint fib, bool v6, UInt128 address)
    {
        Table t = Get(fib);
        int bits = v6 ? 128 : 32;
        for (int len = bits; len >= 0; len--)
        {
            UInt128 a = new Prefix(v6, address, len).Address;
            if (t.Routes.TryGetValue((a, (byte)len), out ushort nh))
                return nh;
        }
        return 0;
    }

    /// <summary>Prefixes held by an instance (for tests).</summary>
    public int Count(nint fib) => Get(fib).Routes.Count;
}
