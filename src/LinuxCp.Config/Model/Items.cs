namespace LinuxCp.Config.Model;

// The declarative model. Field names and enum values follow the Ligato vpp-agent's Linux protos
// (linux/interfaces, linux/l3, linux/iptables, linux/namespace), so their documents load as they
// are; LinuxCp adds its own pair kind. Values are immutable; lists keep the order given.

public enum InterfaceType { Undefined = 0, Veth = 1, TapToVpp = 2, Loopback = 3, Existing = 4, VrfDevice = 5, Dummy = 6 }

public enum NamespaceType { Undefined = 0, Nsid = 1, Pid = 2, Fd = 3, Microservice = 4 }

public enum RouteScope { Undefined = 0, Global = 1, Site = 2, Link = 3, Host = 4 }

public enum IpProtocol { Ipv4 = 0, Ipv6 = 1 }

public enum IptTable { Filter = 0, Nat = 1, Mangle = 2, Raw = 3, Security = 4 }

public enum ChainType { Custom = 0, Input = 1, Output = 2, Forward = 3, Prerouting = 4, Postrouting = 5 }

public enum ChainPolicy { None = 0, Accept = 1, Drop = 2, Queue = 3, Return = 4 }

/// <summary>Where an item lives: null / Undefined is lcpd's own namespace.</summary>
public sealed record NamespaceRef(NamespaceType Type, string Reference)
{
    public override string ToString() => Type switch
    {
        NamespaceType.Nsid => Reference,
        NamespaceType.Pid => $"pid:{Reference}",
        NamespaceType.Fd => $"fd:{Reference}",
        NamespaceType.Microservice => $"microservice:{Reference}",
        _ => "",
    };

    /// <summary>Two references to the same namespace by the same means (a PID and the path of
    /// its namespace file are not compared here: they can change independently).</summary>
    public static bool Same(NamespaceRef? a, NamespaceRef? b) =>
        (a is null || a.Type == NamespaceType.Undefined) ? (b is null || b.Type == NamespaceType.Undefined) : a == b;
}

public sealed record VethLink(string PeerIfName, bool RxChecksumOffloading = true, bool TxChecksumOffloading = true);

public sealed record TapLink(string VppTapIfName);

public sealed record VrfDevLink(uint RoutingTable);

public sealed record LinuxInterface
{
    public required string Name { get; init; }
    public InterfaceType Type { get; init; }
    public NamespaceRef? Namespace { get; init; }
    /// <summary>The name in Linux; empty means <see cref="Name"/>.</summary>
    public string HostIfName { get; init; } = "";
    public bool Enabled { get; init; }
    public IReadOnlyList<string> IpAddresses { get; init; } = [];
    public string PhysAddress { get; init; } = "";
    /// <summary>0: leave the MTU as it is (or the kernel's default for a new link).</summary>
    public uint Mtu { get; init; }
    /// <summary>Create the link only: addresses, MTU and MAC are left to someone else.</summary>
    public bool LinkOnly { get; init; }
    public string VrfMasterInterface { get; init; } = "";
    public VethLink? Veth { get; init; }
    public TapLink? Tap { get; init; }
    public VrfDevLink? VrfDev { get; init; }

    public string LinuxName => HostIfName.Length != 0 ? HostIfName : Name;
}

public sealed record ArpEntry(string Interface, string IpAddress, string HwAddress);

public sealed record LinuxRoute
{
    public required string OutgoingInterface { get; init; }
    public RouteScope Scope { get; init; }
    public required string DstNetwork { get; init; }
    public string GwAddr { get; init; } = "";
    public uint Metric { get; init; }
}

public sealed record RuleChain
{
    public required string Name { get; init; }
    public NamespaceRef? Namespace { get; init; }
    public IReadOnlyList<string> Interfaces { get; init; } = [];
    public IpProtocol Protocol { get; init; }
    public IptTable Table { get; init; }
    public ChainType ChainType { get; init; }
    /// <summary>The chain's name in iptables (CUSTOM chains; ignored for built-in chains).</summary>
    public string ChainName { get; init; } = "";
    public ChainPolicy DefaultPolicy { get; init; }
    public IReadOnlyList<string> Rules { get; init; } = [];

    public string IptablesChain => ChainType == ChainType.Custom ? ChainName : ChainType.ToString().ToUpperInvariant();
}

/// <summary>A LinuxCp port/mirror pair: the same object as <c>lcp create</c>.</summary>
public sealed record LcpPair
{
    public required string Port { get; init; }
    public required string HostIf { get; init; }
    public string Netns { get; init; } = "";
    public bool Tun { get; init; }
    public bool Persist { get; init; }
}

/// <summary>One document: vpp-agent's Config shape (linux_config) plus lcp_config.</summary>
public sealed record ConfigDocument
{
    public IReadOnlyList<LinuxInterface> Interfaces { get; init; } = [];
    public IReadOnlyList<ArpEntry> ArpEntries { get; init; } = [];
    public IReadOnlyList<LinuxRoute> Routes { get; init; } = [];
    public IReadOnlyList<RuleChain> RuleChains { get; init; } = [];
    public IReadOnlyList<LcpPair> Pairs { get; init; } = [];

    public int Count => Interfaces.Count + ArpEntries.Count + Routes.Count + RuleChains.Count + Pairs.Count;

    /// <summary>Every value as a keyed item (pairs first; within a kind, in document order).</summary>
    public List<ConfigItem> Items() =>
        [.. Pairs.Select(ConfigItem.Of), .. Interfaces.Select(ConfigItem.Of), .. ArpEntries.Select(ConfigItem.Of),
         .. Routes.Select(ConfigItem.Of), .. RuleChains.Select(ConfigItem.Of)];
}
