using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;

namespace LinuxCp.Config.Model;

/// <summary>Writes the model back as vpp-agent's JSON (snake_case, enum names; default values
/// left out as protobuf's JSON does), and JSON trees as YAML.</summary>
public static class DocumentWriter
{
    public static JsonObject Document(ConfigDocument d)
    {
        var root = new JsonObject();
        var linux = new JsonObject();
        Add(linux, "interfaces", d.Interfaces.Select(Item));
        Add(linux, "arp_entries", d.ArpEntries.Select(Item));
        Add(linux, "routes", d.Routes.Select(Item));
        Add(linux, "iptables_rulechains", d.RuleChains.Select(Item));
        if (linux.Count != 0)
            root["linux_config"] = linux;
        var lcp = new JsonObject();
        Add(lcp, "pairs", d.Pairs.Select(Item));
        if (lcp.Count != 0)
            root["lcp_config"] = lcp;
        return root;
    }

    private static void Add(JsonObject o, string name, IEnumerable<JsonNode> items)
    {
        var a = new JsonArray([.. items]);
        if (a.Count != 0)
            o[name] = a;
    }

    /// <summary>The document holding exactly these (user-level) items.</summary>
    public static ConfigDocument ToDocument(IEnumerable<ConfigItem> items)
    {
        var list = items.ToList();
        return new ConfigDocument
        {
            Interfaces = [.. list.Select(i => i.Value).OfType<LinuxInterface>()],
            ArpEntries = [.. list.Select(i => i.Value).OfType<ArpEntry>()],
            Routes = [.. list.Select(i => i.Value).OfType<LinuxRoute>()],
            RuleChains = [.. list.Select(i => i.Value).OfType<RuleChain>()],
            Pairs = [.. list.Select(i => i.Value).OfType<LcpPair>()],
        };
    }

    public static JsonObject Item(object v) => v switch
    {
        LinuxInterface i => Interface(i),
        ArpEntry a => new JsonObject { ["interface"] = a.Interface, ["ip_address"] = a.IpAddress, ["hw_address"] = a.HwAddress },
        LinuxRoute r => Route(r),
        RuleChain c => Chain(c),
        LcpPair p => Pair(p),
        InterfaceAddress a => new JsonObject { ["interface"] = a.Interface, ["address"] = a.Prefix },
        InterfaceAdmin s => new JsonObject { ["interface"] = s.Interface, ["enabled"] = s.Up },
        VrfMembership m => new JsonObject { ["interface"] = m.Interface, ["vrf_master_interface"] = m.Master },
        _ => throw new ArgumentException($"not a config value: {v.GetType().Name}", nameof(v)),
    };

    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<object, string> Canon = [];

    /// <summary>A value's canonical text: two values are equivalent when these are equal. Values
    /// are immutable, so each one's text is made once.</summary>
    public static string Canonical(object v) => Canon.GetValue(v, x => Item(x).ToJsonString());

    private static void Opt(JsonObject o, string name, string v)
    {
        if (v.Length != 0)
            o[name] = v;
    }

    private static JsonObject? Ns(NamespaceRef? n) =>
        n is null || n.Type == NamespaceType.Undefined ? null
        : new JsonObject { ["type"] = DocumentReader.ProtoName(n.Type), ["reference"] = n.Reference };

    private static JsonObject Interface(LinuxInterface i)
    {
        var o = new JsonObject { ["name"] = i.Name, ["type"] = DocumentReader.ProtoName(i.Type) };
        if (Ns(i.Namespace) is { } ns)
            o["namespace"] = ns;
        Opt(o, "host_if_name", i.HostIfName);
        if (i.Enabled)
            o["enabled"] = true;
        if (i.IpAddresses.Count != 0)
            o["ip_addresses"] = new JsonArray([.. i.IpAddresses.Select(a => (JsonNode)a)]);
        Opt(o, "phys_address", i.PhysAddress);
        if (i.Mtu != 0)
            o["mtu"] = i.Mtu;
        if (i.LinkOnly)
            o["link_only"] = true;
        Opt(o, "vrf_master_interface", i.VrfMasterInterface);
        if (i.Veth is { } v)
        {
            var vo = new JsonObject { ["peer_if_name"] = v.PeerIfName };
            if (!v.RxChecksumOffloading)
                vo["rx_checksum_offloading"] = "CHKSM_OFFLOAD_DISABLED";
            if (!v.TxChecksumOffloading)
                vo["tx_checksum_offloading"] = "CHKSM_OFFLOAD_DISABLED";
            o["veth"] = vo;
        }
        if (i.Tap is { } t)
            o["tap"] = new JsonObject { ["vpp_tap_if_name"] = t.VppTapIfName };
        if (i.VrfDev is { } d)
            o["vrf_dev"] = new JsonObject { ["routing_table"] = d.RoutingTable };
        return o;
    }

    private static JsonObject Route(LinuxRoute r)
    {
        var o = new JsonObject { ["outgoing_interface"] = r.OutgoingInterface };
        if (r.Scope != RouteScope.Undefined)
            o["scope"] = DocumentReader.ProtoName(r.Scope);
        o["dst_network"] = r.DstNetwork;
        Opt(o, "gw_addr", r.GwAddr);
        if (r.Metric != 0)
            o["metric"] = r.Metric;
        return o;
    }

    private static JsonObject Chain(RuleChain c)
    {
        var o = new JsonObject { ["name"] = c.Name };
        if (Ns(c.Namespace) is { } ns)
            o["namespace"] = ns;
        if (c.Interfaces.Count != 0)
            o["interfaces"] = new JsonArray([.. c.Interfaces.Select(a => (JsonNode)a)]);
        o["protocol"] = DocumentReader.ProtoName(c.Protocol);
        o["table"] = DocumentReader.ProtoName(c.Table);
        o["chain_type"] = DocumentReader.ProtoName(c.ChainType);
        Opt(o, "chain_name", c.ChainName);
        if (c.DefaultPolicy != ChainPolicy.None)
            o["default_policy"] = DocumentReader.ProtoName(c.DefaultPolicy);
        if (c.Rules.Count != 0)
            o["rules"] = new JsonArray([.. c.Rules.Select(a => (JsonNode)a)]);
        return o;
    }

    private static JsonObject Pair(LcpPair p)
    {
        var o = new JsonObject { ["port"] = p.Port, ["host_if"] = p.HostIf };
        Opt(o, "netns", p.Netns);
        if (p.Tun)
            o["tun"] = true;
        if (p.Persist)
            o["persist"] = true;
        return o;
    }

    /// <summary>A JSON tree as block YAML (strings quoted when YAML would read them as
    /// something else).</summary>
    public static string Yaml(JsonNode? n)
    {
        var sb = new StringBuilder();
        WriteYaml(sb, n, 0, inList: false);
        if (sb.Length == 0 || sb[^1] != '\n')
            sb.Append('\n');
        return sb.ToString();
    }

    private static void WriteYaml(StringBuilder sb, JsonNode? n, int indent, bool inList)
    {
        string pad = new(' ', indent);
        switch (n)
        {
            case JsonObject o when o.Count == 0:
                sb.Append("{}\n");
                break;
            case JsonObject o:
            {
                bool first = true;
                foreach (var (k, v) in o)
                {
                    if (!(first && inList))
                        sb.Append(pad);
                    first = false;
                    sb.Append(k).Append(':');
                    if (v is JsonObject { Count: > 0 } or JsonArray { Count: > 0 })
                    {
                        sb.Append('\n');
                        WriteYaml(sb, v, v is JsonArray ? indent : indent + 2, false);
                    }
                    else
                    {
                        sb.Append(' ');
                        WriteYaml(sb, v, indent + 2, false);
                    }
                }
                break;
            }
            case JsonArray a when a.Count == 0:
                sb.Append("[]\n");
                break;
            case JsonArray a:
                foreach (JsonNode? c in a)
                {
                    sb.Append(pad).Append("- ");
                    WriteYaml(sb, c, indent + 2, inList: true);
                }
                break;
            case null:
                sb.Append("null\n");
                break;
            case JsonValue v when v.GetValueKind() == System.Text.Json.JsonValueKind.String:
                sb.Append(Scalar(v.GetValue<string>())).Append('\n');
                break;
            default:
                sb.Append(n.ToJsonString()).Append('\n');
                break;
        }
    }

    private static string Scalar(string s)
    {
        bool plain = s.Length != 0 && !long.TryParse(s, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out _)
            && s is not ("true" or "false" or "null" or "~" or "True" or "False" or "Null" or "yes" or "no")
            && s.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '/' or '-' or '_' or ':' or '@')
            && !s.Contains(": ", StringComparison.Ordinal) && !s.EndsWith(':') && s[0] is not ('-' or ':' or '@');
        return plain ? s : JsonValue.Create(s).ToJsonString();
    }
}
