namespace LinuxCp.Config.Model;

/// <summary>What an item is. The first five are declared by users; the rest are derived from an
/// interface (one per property) and have their own state.</summary>
public enum ItemKind { Interface, Arp, Route, RuleChain, Pair, Address, AdminState, VrfMember }

/// <summary>An IP address of a declared interface (derived value).</summary>
public sealed record InterfaceAddress(string Interface, string Prefix);

/// <summary>The admin state of a declared interface (derived value).</summary>
public sealed record InterfaceAdmin(string Interface, bool Up);

/// <summary>Membership of a declared interface in a VRF device (derived value).</summary>
public sealed record VrfMembership(string Interface, string Master);

/// <summary>One keyed value of the desired state.</summary>
public sealed record ConfigItem(string Key, ItemKind Kind, object Value)
{
    public bool Derived => Kind >= ItemKind.Address;

    public static ConfigItem Of(object value) => value switch
    {
        LinuxInterface i => new(Keys.Interface(i.Name), ItemKind.Interface, i),
        ArpEntry a => new(Keys.Arp(a.Interface, a.IpAddress), ItemKind.Arp, a),
        LinuxRoute r => new(Keys.Route(r.DstNetwork, r.OutgoingInterface), ItemKind.Route, r),
        RuleChain c => new(Keys.RuleChain(c.Name), ItemKind.RuleChain, c),
        LcpPair p => new(Keys.Pair(p.Port), ItemKind.Pair, p),
        InterfaceAddress a => new(Keys.Address(a.Interface, a.Prefix), ItemKind.Address, a),
        InterfaceAdmin s => new(Keys.Admin(s.Interface), ItemKind.AdminState, s),
        VrfMembership v => new(Keys.Vrf(v.Interface, v.Master), ItemKind.VrfMember, v),
        _ => throw new ArgumentException($"not a config value: {value.GetType().Name}", nameof(value)),
    };
}

/// <summary>Keys as vpp-agent names them (without its /vnf-agent/&lt;label&gt;/ prefix), and
/// LinuxCp's own for pairs and derived values.</summary>
public static class Keys
{
    public const string InterfacePrefix = "config/linux/interfaces/v2/interface/";
    public const string ArpPrefix = "config/linux/l3/v2/arp/";
    public const string RoutePrefix = "config/linux/l3/v2/route/";
    public const string RuleChainPrefix = "config/linux/iptables/v2/rulechain/";
    public const string PairPrefix = "config/lcp/v1/pair/";
    public const string DerivedPrefix = "linux/interface/";

    public static string Interface(string name) => InterfacePrefix + name;

    public static string Arp(string ifName, string ip) => $"{ArpPrefix}{ifName}/{ip}";

    public static string Route(string dst, string ifName) => $"{RoutePrefix}{dst}/{ifName}";

    public static string RuleChain(string name) => RuleChainPrefix + name;

    public static string Pair(string port) => PairPrefix + port;

    public static string Address(string ifName, string prefix) => $"{DerivedPrefix}{ifName}/address/{prefix}";

    public static string Admin(string ifName) => $"{DerivedPrefix}{ifName}/state";

    public static string Vrf(string ifName, string master) => $"{DerivedPrefix}{ifName}/vrf/{master}";

    /// <summary>The kind a user-facing key names (a KV store's value is one item of it).</summary>
    public static ItemKind? KindOf(string key) =>
        key.StartsWith(InterfacePrefix, StringComparison.Ordinal) ? ItemKind.Interface
        : key.StartsWith(ArpPrefix, StringComparison.Ordinal) ? ItemKind.Arp
        : key.StartsWith(RoutePrefix, StringComparison.Ordinal) ? ItemKind.Route
        : key.StartsWith(RuleChainPrefix, StringComparison.Ordinal) ? ItemKind.RuleChain
        : key.StartsWith(PairPrefix, StringComparison.Ordinal) ? ItemKind.Pair
        : null;
}
