namespace LinuxCp.Dataplane.Fib;

/// <summary>How big one lookup structure (one family of one table, one copy) is made.</summary>
public readonly record struct FibCapacity(uint Routes, uint Tbl8)
{
    public override string ToString() => $"{Routes} routes, {Tbl8} tbl8 groups";
}

/// <summary>The seam between the FIB writer and the longest-prefix-match structures the workers
/// read: DPDK's rte_fib / rte_fib6 in production (<see cref="RteFibBackend"/>), a managed
/// reference table in unit tests (<see cref="ManagedFibBackend"/>). A handle is one instance
/// (one family, one copy of one table); next hops are group ids.</summary>
public interface IFibBackend
{
    /// <summary>Creates an instance; 0 with <paramref name="errno"/> set when it cannot be made.</summary>
    nint Create(string name, bool v6, FibCapacity c, out int errno);

    void Free(nint fib, bool v6);

    /// <summary>Adds or replaces a prefix. 0, or a negative errno (-ENOSPC: full).</summary>
    int Add(nint fib, in FibKey p, ushort nextHop);

    /// <summary>Removes a prefix. 0, or a negative errno (-ENOENT: not there).</summary>
    int Delete(nint fib, in FibKey p);

    /// <summary>The next hop stored for exactly this prefix (not a longest match), for
    /// <c>lcp verify</c>.</summary>
    bool TryGetExact(nint fib, in FibKey p, out ushort nextHop);

    /// <summary>Longest-prefix match of one address, as a worker would look it up (0: no route).</summary>
    ushort Lookup(nint fib, bool v6, UInt128 address);

    /// <summary>Bytes an instance of this capacity needs, to size tables to the memory EAL has.</summary>
    long EstimateBytes(bool v6, FibCapacity c);

    /// <summary>The most tbl8 groups an instance of the family can have (its entry width bounds it).</summary>
    uint MaxTbl8(bool v6);
}
