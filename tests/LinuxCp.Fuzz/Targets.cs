using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using LinuxCp.Config.Model;
using LinuxCp.ControlPlane.Netlink;
using LinuxCp.Dataplane.Counters;
using LinuxCp.Dataplane.Paths;
using LinuxCp.Management.Api;
using LinuxCp.Management.Config;
using LinuxCp.Management.Contracts;
using LinuxCp.Management.Doctor;
using LinuxCp.Management.Rest;

namespace LinuxCp.Fuzz;

/// <summary>Thrown when a target's own invariant fails (not an input error): a finding.</summary>
public sealed class FuzzFindingException(string message) : Exception(message);

/// <summary>The fuzz targets. Each takes arbitrary bytes; an input the code under test rejects
/// the documented way (a counted drop, <see cref="ApiException"/>, <see cref="UsageException"/>,
/// <see cref="ConfigException"/>, a JSON error) returns normally; anything else escapes and is a
/// crash to AFL and a failure to the replay test.</summary>
public static unsafe class Targets
{
    public static readonly string[] Names = ["frame", "netlink", "api", "launch", "config"];

    public static void Run(string target, ReadOnlySpan<byte> data)
    {
        switch (target)
        {
            case "frame": Frame(data); break;
            case "netlink": Netlink(data); break;
            case "api": Api(data); break;
            case "launch": Launch(data); break;
            case "config": Config(data); break;
            default: throw new ArgumentException($"unknown target '{target}' ({string.Join(", ", Names)})");
        }
    }

    private const ulong PortMac = 0x01_04_03_02_01_00; // 00:01:02:03:04:01 as MacAddress.Bits

    /// <summary>The one-pass IPv4/IPv6 checks of the worker's fast path against the full classifier
    /// and eligibility checks (the oracle): they must decide "forward" on exactly the same frames.
    /// The first byte picks the receiving port's MAC (the frame's own destination or another) and
    /// the rest is the frame, in a buffer with tailroom as an mbuf has.</summary>
    public static void Frame(ReadOnlySpan<byte> data)
    {
        if (data.Length < 1)
            return;
        bool own = (data[0] & 1) != 0;
        ReadOnlySpan<byte> frame = data[1..];
        byte* buf = stackalloc byte[frame.Length + 64];
        new Span<byte>(buf, frame.Length + 64).Clear();
        frame.CopyTo(new Span<byte>(buf, frame.Length));
        uint len = (uint)frame.Length;
        ulong mac = own && len >= 6 ? (*(uint*)buf | ((ulong)*(ushort*)(buf + 4) << 32)) & ~1UL : PortMac;

        Reason full = FrameClassifier.Classify(buf, len, len, mac, puntOther: true);
        bool forward4 = full == Reason.PuntIp4 && Forwarding.Ip4Eligible(buf, mac) == Forwarding.Forward;
        bool forward6 = full == Reason.PuntIp6 && Forwarding.Ip6Eligible(buf, mac) == Forwarding.Forward;
        (var want4, var mask4) = Forwarding.PlainIp4Template(mac);
        (var want6, var mask6) = Forwarding.PlainIp6Template(mac);
        bool fast4 = len >= 34 && Forwarding.IsPlainIp4Header(buf, len, want4, mask4);
        bool fast6 = len >= 54 && Forwarding.IsPlainIp6Header(buf, len, want6, mask6);
        // The fast path must never forward what the full checks would not; and (within the bytes
        // it is given) it must take everything they would forward, or traffic takes the slow path.
        if (fast4 != forward4 && (fast4 || len >= 34))
            throw new FuzzFindingException($"IPv4: one-pass {fast4}, full classifier {full} / forward {forward4}, len {len}");
        if (fast6 != forward6 && (fast6 || len >= 54))
            throw new FuzzFindingException($"IPv6: one-pass {fast6}, full classifier {full} / forward {forward6}, len {len}");
        if (!Enum.IsDefined(full))
            throw new FuzzFindingException($"classifier returned an undefined reason {(int)full}");
    }

    /// <summary>The rtnetlink parser on one datagram: malformed messages are counted, never thrown;
    /// every message handed to the sink is self-consistent.</summary>
    public static void Netlink(ReadOnlySpan<byte> data)
    {
        var sink = new CheckingSink();
        int bad = NetlinkParser.Parse(data, ref sink);
        if (bad < 0)
            throw new FuzzFindingException($"negative malformed count {bad}");
        int max = data.Length / Nl.HeaderSize + 1;
        if (sink.Messages + bad > max)
            throw new FuzzFindingException($"{sink.Messages} messages + {bad} malformed out of {data.Length} bytes");
    }

    private struct CheckingSink : INetlinkSink
    {
        public int Messages;

        public void Link(in LinkMsg m)
        {
            Messages++;
            if (m.Name.Length > 4096 || m.Kind.Length > 4096)
                throw new FuzzFindingException("link name/kind longer than any attribute");
        }

        public void Address(in AddrMsg m)
        {
            Messages++;
            if (m.PrefixLength < 0 || m.PrefixLength > (m.V6 ? 128 : 32))
                throw new FuzzFindingException($"address prefix length {m.PrefixLength}");
            if (!m.V6 && m.Address >> 32 != 0)
                throw new FuzzFindingException("IPv4 address wider than 32 bits");
        }

        public void Route(in RouteMsg m)
        {
            Messages++;
            if (m.Hops.Length > NetlinkParser.MaxNextHops)
                throw new FuzzFindingException($"{m.Hops.Length} next hops kept");
            if (m.Prefix.Length > (m.Prefix.V6 ? 128 : 32))
                throw new FuzzFindingException($"route prefix length {m.Prefix.Length}");
        }

        public void Neighbor(in NeighMsg m)
        {
            Messages++;
            if (!m.V6 && m.Ip >> 32 != 0)
                throw new FuzzFindingException("IPv4 neighbour wider than 32 bits");
        }

        public void Nexthop(in NexthopMsg m) => Messages++;

        public void Rule(in RuleMsg m) => Messages++;

        public void Control(ushort type, int errno, uint seq) => Messages++;
    }

    /// <summary>What arrives on the API socket: a JSON-lines request (first byte not an uppercase
    /// letter), or the body of one of the REST POST/PUT endpoints (the first byte picks which), bound
    /// with the REST server's JSON options.</summary>
    public static void Api(ReadOnlySpan<byte> data)
    {
        if (data.Length == 0)
            return;
        if (data[0] is >= (byte)'A' and <= (byte)'Z')
        {
            ReadOnlySpan<byte> body = data[1..];
            try
            {
                object? o = (data[0] % 4) switch
                {
                    0 => JsonSerializer.Deserialize<LcpCreateRequest>(body, Protocol.Json),
                    1 => JsonSerializer.Deserialize<TraceAddRequest>(body, Protocol.Json),
                    2 => JsonSerializer.Deserialize<CaptureStartRequest>(body, Protocol.Json),
                    _ => JsonSerializer.Deserialize<LogLevelRequest>(body, Protocol.Json),
                };
                _ = o?.ToString();
            }
            catch (JsonException)
            {
                // 400 from ASP.NET's binder
            }
            return;
        }
        string line = Encoding.UTF8.GetString(data);
        try
        {
            string[] argv = ApiServer.ParseRequest(line, out string? input);
            if (argv.Any(a => a is null))
                throw new FuzzFindingException("null argument accepted");
            if (argv.Length > 64)
                throw new FuzzFindingException($"{argv.Length} arguments accepted");
            _ = input?.Length;
        }
        catch (ApiException)
        {
            // the documented error reply
        }
    }

    /// <summary>The launch line: NUL- or newline-separated words, through lcpd's option parser and
    /// the start-up checks' EAL reading (the lcores list included).</summary>
    public static void Launch(ReadOnlySpan<byte> data)
    {
        string[] words = Encoding.UTF8.GetString(data).Split(['\0', '\n']);
        try
        {
            LaunchOptions o = LaunchOptions.Parse(words);
            _ = o.ToString();
        }
        catch (UsageException)
        {
            // exit code 2 with the message
        }
        LaunchFacts f = Checklist.FromEal(words, keepPortIpv6: false);
        _ = f.ToString();
        foreach (string w in words)
        {
            try
            {
                _ = Checklist.ParseLcores(w);
            }
            catch (FormatException)
            {
                // reported by the lcores check as a bad --lcores value
            }
        }
    }

    /// <summary>A configuration document (YAML or JSON) through the reader that lcpd applies.</summary>
    public static void Config(ReadOnlySpan<byte> data)
    {
        string text = Encoding.UTF8.GetString(data);
        try
        {
            (ConfigDocument doc, IReadOnlyDictionary<object, string> paths) = DocumentReader.Parse(text);
            _ = doc.ToString();
            _ = paths.Count;
        }
        catch (ConfigException e)
        {
            if (string.IsNullOrWhiteSpace(e.Message))
                throw new FuzzFindingException("a config error without a message");
        }
    }

    /// <summary>Runs a target over every file of a directory tree (the corpus and the kept
    /// crashes); returns the failures as "file: exception".</summary>
    public static List<string> Replay(string target, string dir)
    {
        var failures = new List<string>();
        if (!Directory.Exists(dir))
            return failures;
        foreach (string f in Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
        {
            try
            {
                Run(target, File.ReadAllBytes(f));
            }
            catch (Exception e)
            {
                failures.Add($"{f}: {e.GetType().Name}: {e.Message}");
            }
        }
        return failures;
    }
}
