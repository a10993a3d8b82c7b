using LinuxCp.Config.Model;

namespace LinuxCp.Config.Linux;

/// <summary>A kernel link as read back.</summary>
public sealed record LinkState(int Index, string Name, string Kind, uint Mtu, ulong Mac, bool Up, int Master);

/// <summary>A neighbour entry as read back.</summary>
public sealed record NeighState(int IfIndex, string Ip, ulong Mac, ushort State, byte Protocol);

/// <summary>A main-table route as read back (single path).</summary>
public sealed record RouteState(string Dst, int Oif, string Gw, uint Metric, byte Scope, byte Protocol, uint Table);

/// <summary>What to change on a link; null fields are left as they are.</summary>
public sealed record LinkChange
{
    public string? Name { get; init; }
    public uint? Mtu { get; init; }
    public ulong? Mac { get; init; }
    public bool? Up { get; init; }
    /// <summary>ifindex of the master (a VRF device); 0 releases it.</summary>
    public int? Master { get; init; }
    /// <summary>Move the link into this namespace (a path; "" is lcpd's own).</summary>
    public string? TargetNamespace { get; init; }
}

/// <summary>A failed kernel (or iptables) operation: what was asked, the errno and the kernel's
/// own message when it gave one.</summary>
public sealed class LinuxException : Exception
{
    public LinuxException(string message, int errno = 0) : base(message)
    {
        Errno = errno;
    }

    public LinuxException() : this("operation failed") { }

    public LinuxException(string message, Exception inner) : base(message, inner) { }

    public int Errno { get; }

    /// <summary>Worth trying again later (busy, out of buffers, interrupted).</summary>
    public bool Retriable => Errno is 11 or 16 or 105 or 4 or 110; // EAGAIN EBUSY ENOBUFS EINTR ETIMEDOUT

    public bool NotFound => Errno is 2 or 19 or 3; // ENOENT ENODEV ESRCH
}

/// <summary>Everything the config engine asks of Linux. Namespaces are given as paths to their
/// files ("" is lcpd's own). The real one speaks rtnetlink and runs iptables; unit tests use a
/// model of it.</summary>
public interface ILinux
{
    /// <summary>The path of a namespace, or null with the reason it is not there (yet).
    /// <paramref name="create"/>: create a missing named (NSID) namespace.</summary>
    string? Namespace(NamespaceRef? ns, bool create, out string reason);

    /// <summary>Can a missing named namespace be created (so that everyone sees it)?</summary>
    bool CanCreateNamespaces { get; }

    IReadOnlyList<LinkState> Links(string ns);

    void CreateVeth(string ns, string name, string peerNs, string peerName);

    /// <summary>A link of a kind that needs no peer: dummy, or vrf with its table.</summary>
    void CreateLink(string ns, string name, string kind, uint vrfTable);

    void DeleteLink(string ns, int index);

    void SetLink(string ns, int index, LinkChange change);

    /// <summary>Checksum offloads (ethtool -K).</summary>
    void SetOffloads(string ns, string name, bool rx, bool tx);

    /// <summary>Addresses of a link as "ip/len".</summary>
    IReadOnlyList<string> Addresses(string ns, int index);

    /// <summary>Every address in the namespace with its link (one dump).</summary>
    IReadOnlyList<(int IfIndex, string Prefix)> AllAddresses(string ns);

    void AddAddress(string ns, int index, string prefix);

    void DeleteAddress(string ns, int index, string prefix);

    IReadOnlyList<NeighState> Neighbors(string ns);

    void SetNeighbor(string ns, int index, string ip, ulong mac);

    void DeleteNeighbor(string ns, int index, string ip);

    IReadOnlyList<RouteState> Routes(string ns);

    void AddRoute(string ns, LinuxRoute route, int oif);

    void DeleteRoute(string ns, LinuxRoute route, int oif);

    /// <summary>Runs iptables (or ip6tables) in the namespace; returns its exit code and output.</summary>
    (int Code, string Output) Iptables(string ns, bool v6, IReadOnlyList<string> args, string? stdin = null);

    /// <summary>The named namespaces (/run/netns).</summary>
    IReadOnlyList<string> NamedNamespaces();

    /// <summary>Deletes a named namespace (one a reverted transaction created).</summary>
    void DeleteNamedNamespace(string name);

    /// <summary>Forget cached sockets and dumps (after a transaction).</summary>
    void Flush();
}

/// <summary>LinuxCp's own pairs, as the config layer sees them (implemented over the pair manager).</summary>
public interface IPairControl
{
    /// <summary>The pair whose mirror is named <paramref name="hostIf"/>, or null.</summary>
    LcpPair? ByHostIf(string hostIf);

    /// <summary>The pair of a port, or null.</summary>
    LcpPair? ByPort(string port);

    void Create(LcpPair pair);

    void Delete(string port);
}
