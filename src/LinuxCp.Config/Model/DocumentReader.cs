using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace LinuxCp.Config.Model;

/// <summary>A problem with the input, named by its field path
/// (<c>linux_config.interfaces[2].ip_addresses[0]</c>).</summary>
public sealed record ConfigError(string Path, string Message)
{
    public override string ToString() => Path.Length == 0 ? Message : $"{Path}: {Message}";
}

/// <summary>Thrown with every error of a refused document or transaction.</summary>
public sealed class ConfigException : Exception
{
    public ConfigException(IReadOnlyList<ConfigError> errors)
        : base(errors.Count == 1 ? errors[0].ToString() : $"{errors.Count} errors: " + string.Join("; ", errors.Take(20)))
    {
        Errors = errors;
    }

    public ConfigException(string message) : this([new ConfigError("", message)]) { }

    public ConfigException() : this("invalid configuration") { }

    public ConfigException(string message, Exception inner) : base(message, inner)
    {
        Errors = [new ConfigError("", message)];
    }

    public IReadOnlyList<ConfigError> Errors { get; } = [];
}

/// <summary>Reads documents (JSON or YAML, vpp-agent's Config shape) and single KV values into the
/// model. Field names follow protobuf's JSON rules: snake_case and lowerCamelCase are the same
/// field. Unknown fields, wrong types, unknown enum values and duplicates are errors, each with
/// its path; nothing is guessed.</summary>
public static class DocumentReader
{
    public const int MaxDocumentBytes = 8 << 20;
    public const int MaxItems = 200_000;

    /// <summary>Parses a whole document. Throws <see cref="ConfigException"/> with every error found.</summary>
    public static (ConfigDocument Doc, IReadOnlyDictionary<object, string> Paths) Parse(string text)
    {
        var errors = new List<ConfigError>();
        JsonNode? root = ToJson(text, errors);
        var paths = new Dictionary<object, string>(ReferenceEqualityComparer.Instance);
        ConfigDocument doc = new();
        if (root is not null)
            doc = ReadDocument(root, errors, paths);
        if (errors.Count != 0)
            throw new ConfigException(errors);
        return (doc, paths);
    }

    /// <summary>Parses one item as stored under a KV key (its kind comes from the key).</summary>
    public static ConfigItem ParseValue(string key, string json)
    {
        ItemKind kind = Keys.KindOf(key) ?? throw new ConfigException($"{key}: not a configuration key");
        var errors = new List<ConfigError>();
        JsonNode? node = ToJson(json, errors);
        object? value = null;
        if (node is not null)
        {
            var r = new Reader(errors, new Dictionary<object, string>(ReferenceEqualityComparer.Instance));
            value = kind switch
            {
                ItemKind.Interface => r.Interface(node, key),
                ItemKind.Arp => r.Arp(node, key),
                ItemKind.Route => r.Route(node, key),
                ItemKind.RuleChain => r.Chain(node, key),
                _ => r.Pair(node, key),
            };
        }
        if (errors.Count != 0 || value is null)
            throw new ConfigException(errors.Count != 0 ? errors : [new ConfigError(key, "empty value")]);
        ConfigItem item = ConfigItem.Of(value);
        if (item.Key != key)
            throw new ConfigException($"{key}: the value belongs under {item.Key}");
        return item;
    }

    /// <summary>JSON as it is; anything else is read as YAML and converted (plain scalars that
    /// look like numbers or booleans become those).</summary>
    public static JsonNode? ToJson(string text, List<ConfigError> errors)
    {
        if (text.Length > MaxDocumentBytes)
        {
            errors.Add(new("", $"document larger than {MaxDocumentBytes} bytes"));
            return null;
        }
        string t = text.TrimStart();
        if (t.Length == 0)
        {
            errors.Add(new("", "empty document"));
            return null;
        }
        if (t[0] is '{' or '[')
        {
            try
            {
                JsonNode? n = JsonNode.Parse(t, new JsonNodeOptions { PropertyNameCaseInsensitive = false },
                    new JsonDocumentOptions { MaxDepth = MaxDepth, CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
                Materialize(n); // objects are built lazily: a key given twice surfaces here
                return n;
            }
            catch (JsonException e)
            {
                errors.Add(new("", $"malformed JSON: {e.Message}"));
                return null;
            }
            catch (ArgumentException e)
            {
                errors.Add(new("", $"malformed JSON: a key is given twice in one object ({e.Message})"));
                return null;
            }
        }
        try
        {
            var ys = new YamlStream();
            ys.Load(new DepthLimit(new Parser(new StringReader(text)), MaxDepth));
            if (ys.Documents.Count != 1)
            {
                errors.Add(new("", ys.Documents.Count == 0 ? "empty document" : "more than one YAML document"));
                return null;
            }
            return FromYaml(ys.Documents[0].RootNode, "", errors);
        }
        catch (YamlException e)
        {
            errors.Add(new("", $"malformed YAML at line {e.Start.Line}, column {e.Start.Column}: {e.InnerException?.Message ?? e.Message}"));
            return null;
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or FormatException or OverflowException)
        {
            // The YAML library's own state errors on some malformed input (found by MutationTests).
            errors.Add(new("", $"malformed YAML: {e.Message}"));
            return null;
        }
    }

    /// <summary>How deeply mappings and sequences may nest, in JSON and YAML alike.</summary>
    public const int MaxDepth = 32;

    /// <summary>Passes the parser's events on and refuses nesting deeper than the limit before the
    /// YAML library's node loader, which recurses once per level, sees it: 16k nested flow
    /// mappings in a 16 KB document were enough to overflow the stack (found by the config fuzz
    /// target), which no exception handler can catch.</summary>
    private sealed class DepthLimit(IParser inner, int max) : IParser
    {
        private int _depth;

        public YamlDotNet.Core.Events.ParsingEvent? Current => inner.Current;

        public bool MoveNext()
        {
            if (!inner.MoveNext())
                return false;
            switch (inner.Current)
            {
                case YamlDotNet.Core.Events.MappingStart or YamlDotNet.Core.Events.SequenceStart:
                    if (++_depth > max)
                        throw new YamlException(inner.Current.Start, inner.Current.End, $"nested deeper than {max} levels");
                    break;
                case YamlDotNet.Core.Events.MappingEnd or YamlDotNet.Core.Events.SequenceEnd:
                    _depth--;
                    break;
            }
            return true;
        }
    }

    private static void Materialize(JsonNode? n)
    {
        switch (n)
        {
            case JsonObject o:
                foreach (var (_, v) in o)
                    Materialize(v);
                break;
            case JsonArray a:
                foreach (JsonNode? v in a)
                    Materialize(v);
                break;
        }
    }

    /// <summary>A loaded YAML node as JSON; its depth was bounded while it was parsed (<see cref="DepthLimit"/>).</summary>
    private static JsonNode? FromYaml(YamlNode n, string path, List<ConfigError> errors)
    {
        switch (n)
        {
            case YamlMappingNode m:
            {
                var o = new JsonObject();
                foreach (var (k, v) in m.Children)
                {
                    string name = (k as YamlScalarNode)?.Value ?? "";
                    string p = path.Length == 0 ? name : $"{path}.{name}";
                    if (o.ContainsKey(name))
                    {
                        errors.Add(new(p, "duplicate key"));
                        continue;
                    }
                    o[name] = FromYaml(v, p, errors);
                }
                return o;
            }
            case YamlSequenceNode s:
            {
                var a = new JsonArray();
                int i = 0;
                foreach (YamlNode c in s.Children)
                    a.Add(FromYaml(c, $"{path}[{i++}]", errors));
                return a;
            }
            case YamlScalarNode sc:
            {
                string v = sc.Value ?? "";
                if (sc.Style is not (ScalarStyle.Plain or ScalarStyle.Any))
                    return JsonValue.Create(v);
                if (v is "" or "~" or "null" or "Null" or "NULL")
                    return null;
                if (v is "true" or "True" or "TRUE")
                    return JsonValue.Create(true);
                if (v is "false" or "False" or "FALSE")
                    return JsonValue.Create(false);
                if (long.TryParse(v, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long l))
                    return JsonValue.Create(l);
                return JsonValue.Create(v);
            }
            default:
                errors.Add(new(path, "unsupported YAML node (aliases are not accepted)"));
                return null;
        }
    }

    private static ConfigDocument ReadDocument(JsonNode root, List<ConfigError> errors, Dictionary<object, string> paths)
    {
        var r = new Reader(errors, paths);
        var top = r.Object(root, "");
        if (top is null)
            return new();
        var interfaces = new List<LinuxInterface>();
        var arps = new List<ArpEntry>();
        var routes = new List<LinuxRoute>();
        var chains = new List<RuleChain>();
        var pairs = new List<LcpPair>();
        if (top.Take("linux_config") is { } lc && r.Object(lc.Node, lc.Path) is { } linux)
        {
            r.List(linux, "interfaces", interfaces, r.Interface);
            r.List(linux, "arp_entries", arps, r.Arp);
            r.List(linux, "routes", routes, r.Route);
            r.List(linux, "iptables_rulechains", chains, r.Chain);
            linux.RejectRest();
        }
        if (top.Take("lcp_config") is { } pc && r.Object(pc.Node, pc.Path) is { } lcp)
        {
            r.List(lcp, "pairs", pairs, r.Pair);
            lcp.RejectRest();
        }
        top.RejectRest();
        if (interfaces.Count + arps.Count + routes.Count + chains.Count + pairs.Count > MaxItems)
            errors.Add(new("", $"more than {MaxItems} items"));
        return new ConfigDocument { Interfaces = interfaces, ArpEntries = arps, Routes = routes, RuleChains = chains, Pairs = pairs };
    }

    /// <summary>A JSON object whose fields are taken one by one; what is left is unknown.</summary>
    internal sealed class Fields(JsonObject o, string path, List<ConfigError> errors)
    {
        private readonly Dictionary<string, (string Name, JsonNode? Node)> _byCanon = Canon(o, path, errors);

        public string Path => path;

        private static Dictionary<string, (string, JsonNode?)> Canon(JsonObject o, string path, List<ConfigError> errors)
        {
            var d = new Dictionary<string, (string, JsonNode?)>(StringComparer.Ordinal);
            foreach (var (k, v) in o)
            {
                string c = Normal(k);
                if (!d.TryAdd(c, (k, v)))
                    errors.Add(new(Join(path, k), $"given twice (as {d[c].Item1} and {k})"));
            }
            return d;
        }

        /// <summary>protobuf JSON: ip_addresses and ipAddresses are one field.</summary>
        private static string Normal(string k) => k.Replace("_", "", StringComparison.Ordinal).ToLowerInvariant();

        public (JsonNode? Node, string Path)? Take(string snake)
        {
            if (!_byCanon.Remove(Normal(snake), out var f))
                return null;
            return (f.Node, Join(path, f.Name));
        }

        public void RejectRest()
        {
            foreach (var (_, (name, _)) in _byCanon)
                errors.Add(new(Join(path, name), "unknown field"));
            _byCanon.Clear();
        }

        public static string Join(string path, string name) => path.Length == 0 ? name : $"{path}.{name}";
    }

    internal sealed class Reader(List<ConfigError> errors, Dictionary<object, string> paths)
    {
        public Fields? Object(JsonNode? n, string path)
        {
            if (n is JsonObject o)
                return new Fields(o, path, errors);
            errors.Add(new(path, n is null ? "missing object" : $"expected an object, got {Describe(n)}"));
            return null;
        }

        public void List<T>(Fields f, string name, List<T> into, Func<JsonNode, string, T?> item) where T : class
        {
            if (f.Take(name) is not { } l || l.Node is null)
                return;
            if (l.Node is not JsonArray a)
            {
                errors.Add(new(l.Path, $"expected a list, got {Describe(l.Node)}"));
                return;
            }
            for (int i = 0; i < a.Count; i++)
            {
                string p = $"{l.Path}[{i}]";
                if (a[i] is null)
                {
                    errors.Add(new(p, "null item"));
                    continue;
                }
                if (item(a[i]!, p) is { } v)
                {
                    into.Add(v);
                    paths[v] = p;
                }
            }
        }

        private static string Describe(JsonNode n) => n.GetValueKind() switch
        {
            JsonValueKind.Array => "a list",
            JsonValueKind.Object => "an object",
            JsonValueKind.String => "a string",
            JsonValueKind.Number => "a number",
            JsonValueKind.True or JsonValueKind.False => "a boolean",
            _ => "null",
        };

        public string Str(Fields f, string name, bool required = false)
        {
            if (f.Take(name) is not { } v || v.Node is null)
            {
                if (required)
                    errors.Add(new(Fields.Join(f.Path, name), "required"));
                return "";
            }
            if (v.Node is JsonValue jv && jv.GetValueKind() == JsonValueKind.String)
                return jv.GetValue<string>();
            if (v.Node is JsonValue jn && jn.GetValueKind() == JsonValueKind.Number)
                return jn.ToJsonString();
            errors.Add(new(v.Path, $"expected a string, got {Describe(v.Node)}"));
            return "";
        }

        public bool Bool(Fields f, string name, bool dflt = false)
        {
            if (f.Take(name) is not { } v || v.Node is null)
                return dflt;
            if (v.Node.GetValueKind() is JsonValueKind.True or JsonValueKind.False)
                return v.Node.GetValue<bool>();
            errors.Add(new(v.Path, $"expected true or false, got {Describe(v.Node)}"));
            return dflt;
        }

        /// <summary>vpp-agent's ChecksumOffloading enum (DEFAULT/ENABLED on, DISABLED off), or a boolean.</summary>
        public bool Offload(Fields f, string name)
        {
            if (f.Take(name) is not { } v || v.Node is null)
                return true;
            if (v.Node.GetValueKind() is JsonValueKind.True or JsonValueKind.False)
                return v.Node.GetValue<bool>();
            string s = v.Node.GetValueKind() == JsonValueKind.String ? v.Node.GetValue<string>() : v.Node.ToJsonString();
            switch (s)
            {
                case "CHKSM_OFFLOAD_DEFAULT" or "CHKSM_OFFLOAD_ENABLED" or "0" or "1":
                    return true;
                case "CHKSM_OFFLOAD_DISABLED" or "2":
                    return false;
                default:
                    errors.Add(new(v.Path, $"unknown value {v.Node.ToJsonString()} (true, false, CHKSM_OFFLOAD_DEFAULT, CHKSM_OFFLOAD_ENABLED or CHKSM_OFFLOAD_DISABLED)"));
                    return true;
            }
        }

        public uint U32(Fields f, string name)
        {
            if (f.Take(name) is not { } v || v.Node is null)
                return 0;
            // protobuf JSON accepts integers as numbers or as decimal strings.
            string s = v.Node.GetValueKind() switch
            {
                JsonValueKind.Number => v.Node.ToJsonString(),
                JsonValueKind.String => v.Node.GetValue<string>(),
                _ => "?",
            };
            if (uint.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out uint u))
                return u;
            errors.Add(new(v.Path, $"expected an unsigned 32-bit integer, got {s}"));
            return 0;
        }

        public IReadOnlyList<string> Strings(Fields f, string name)
        {
            if (f.Take(name) is not { } v || v.Node is null)
                return [];
            if (v.Node is not JsonArray a)
            {
                errors.Add(new(v.Path, $"expected a list of strings, got {Describe(v.Node)}"));
                return [];
            }
            var list = new List<string>(a.Count);
            for (int i = 0; i < a.Count; i++)
            {
                if (a[i] is JsonValue s && s.GetValueKind() == JsonValueKind.String)
                    list.Add(s.GetValue<string>());
                else
                    errors.Add(new($"{v.Path}[{i}]", "expected a string"));
            }
            return list;
        }

        /// <summary>An enum by its proto name (VETH, TAP_TO_VPP) or number.</summary>
        public T Enum<T>(Fields f, string name) where T : struct, System.Enum
        {
            if (f.Take(name) is not { } v || v.Node is null)
                return default;
            var kind = v.Node.GetValueKind();
            if (kind == JsonValueKind.Number && int.TryParse(v.Node.ToJsonString(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int n) && System.Enum.IsDefined(typeof(T), n))
                return (T)(object)n;
            if (kind == JsonValueKind.String)
            {
                string s = v.Node.GetValue<string>().Replace("_", "", StringComparison.Ordinal);
                if (System.Enum.TryParse(s, ignoreCase: true, out T e) && !int.TryParse(s, CultureInfo.InvariantCulture, out _))
                    return e;
            }
            errors.Add(new(v.Path, $"unknown value {v.Node.ToJsonString()} (one of {string.Join(", ", ProtoNames<T>())})"));
            return default;
        }

        public static IEnumerable<string> ProtoNames<T>() where T : struct, System.Enum =>
            System.Enum.GetValues<T>().Select(x => ProtoName(x));

        public NamespaceRef? Namespace(Fields f)
        {
            if (f.Take("namespace") is not { } v || v.Node is null)
                return null;
            if (Object(v.Node, v.Path) is not { } o)
                return null;
            var t = Enum<NamespaceType>(o, "type");
            string r = Str(o, "reference");
            o.RejectRest();
            return t == NamespaceType.Undefined && r.Length == 0 ? null : new NamespaceRef(t, r);
        }

        public LinuxInterface? Interface(JsonNode n, string path)
        {
            if (Object(n, path) is not { } f)
                return null;
            var i = new LinuxInterface
            {
                Name = Str(f, "name", required: true),
                Type = Enum<InterfaceType>(f, "type"),
                Namespace = Namespace(f),
                HostIfName = Str(f, "host_if_name"),
                Enabled = Bool(f, "enabled"),
                IpAddresses = Strings(f, "ip_addresses"),
                PhysAddress = Str(f, "phys_address"),
                Mtu = U32(f, "mtu"),
                LinkOnly = Bool(f, "link_only"),
                VrfMasterInterface = Str(f, "vrf_master_interface"),
                Veth = f.Take("veth") is { } ve && ve.Node is not null && Object(ve.Node, ve.Path) is { } vo
                    ? Done(vo, new VethLink(Str(vo, "peer_if_name"), Offload(vo, "rx_checksum_offloading"), Offload(vo, "tx_checksum_offloading")))
                    : null,
                Tap = f.Take("tap") is { } te && te.Node is not null && Object(te.Node, te.Path) is { } to
                    ? Done(to, new TapLink(Str(to, "vpp_tap_if_name")))
                    : null,
                VrfDev = f.Take("vrf_dev") is { } vd && vd.Node is not null && Object(vd.Node, vd.Path) is { } vdo
                    ? Done(vdo, new VrfDevLink(U32(vdo, "routing_table")))
                    : null,
            };
            f.RejectRest();
            return i;
        }

        private static T Done<T>(Fields f, T v)
        {
            f.RejectRest();
            return v;
        }

        public ArpEntry? Arp(JsonNode n, string path)
        {
            if (Object(n, path) is not { } f)
                return null;
            var a = new ArpEntry(Str(f, "interface", true), Str(f, "ip_address", true), Str(f, "hw_address", true));
            f.RejectRest();
            return a;
        }

        public LinuxRoute? Route(JsonNode n, string path)
        {
            if (Object(n, path) is not { } f)
                return null;
            var r = new LinuxRoute
            {
                OutgoingInterface = Str(f, "outgoing_interface", true),
                Scope = Enum<RouteScope>(f, "scope"),
                DstNetwork = Str(f, "dst_network", true),
                GwAddr = Str(f, "gw_addr"),
                Metric = U32(f, "metric"),
            };
            f.RejectRest();
            return r;
        }

        public RuleChain? Chain(JsonNode n, string path)
        {
            if (Object(n, path) is not { } f)
                return null;
            var c = new RuleChain
            {
                Name = Str(f, "name", true),
                Namespace = Namespace(f),
                Interfaces = Strings(f, "interfaces"),
                Protocol = Enum<IpProtocol>(f, "protocol"),
                Table = Enum<IptTable>(f, "table"),
                ChainType = Enum<ChainType>(f, "chain_type"),
                ChainName = Str(f, "chain_name"),
                DefaultPolicy = Enum<ChainPolicy>(f, "default_policy"),
                Rules = Strings(f, "rules"),
            };
            f.RejectRest();
            return c;
        }

        public LcpPair? Pair(JsonNode n, string path)
        {
            if (Object(n, path) is not { } f)
                return null;
            var p = new LcpPair
            {
                Port = Str(f, "port", true),
                HostIf = Str(f, "host_if", true),
                Netns = Str(f, "netns"),
                Tun = Bool(f, "tun"),
                Persist = Bool(f, "persist"),
            };
            f.RejectRest();
            return p;
        }
    }

    /// <summary>VETH, TAP_TO_VPP, IPV4: the proto spelling of a model enum value.</summary>
    public static string ProtoName<T>(T value) where T : struct, System.Enum
    {
        string s = value.ToString();
        if (typeof(T) == typeof(IpProtocol))
            return s.ToUpperInvariant();
        var b = new System.Text.StringBuilder(s.Length + 4);
        for (int i = 0; i < s.Length; i++)
        {
            if (i > 0 && char.IsUpper(s[i]))
                b.Append('_');
            b.Append(char.ToUpperInvariant(s[i]));
        }
        return b.ToString();
    }
}
