using System.Globalization;
using LinuxCp.Dataplane.Fib;

namespace LinuxCp.Dataplane.Features;

/// <summary>Where a rule runs: on what a port receives (before the punt/forward decision) or on
/// what leaves it (forwarded traffic and what Linux sends on the mirror alike).</summary>
public enum AclDirection : byte
{
    Input,
    Output,
}

public enum AclAction : byte
{
    /// <summary>Let it through (and stop looking at lower-priority rules).</summary>
    Pass,

    /// <summary>Drop it, counted on the rule.</summary>
    Drop,

    /// <summary>Pass it and create a flow, so that the return traffic is admitted even where a
    /// drop rule would match it (a stateful firewall).</summary>
    Reflect,
}

/// <summary>A 5-tuple classifier rule. A prefix of length 0 (or none) matches any address of the
/// rule's family; <see cref="Proto"/> -1 any protocol; port ranges are inclusive (for ICMP and
/// ICMPv6 the source range is the type and the destination range the code, as in VPP's ACL);
/// <see cref="TcpFlagsMask"/> 0 ignores the flags. Rules match first by <see cref="Priority"/>
/// (lower first), then by <see cref="Id"/>.</summary>
public sealed record AclRule(
    uint Id,
    string Port,
    AclDirection Direction,
    bool V6,
    Prefix Src,
    Prefix Dst,
    int Proto,
    ushort SportLo,
    ushort SportHi,
    ushort DportLo,
    ushort DportHi,
    byte TcpFlags,
    byte TcpFlagsMask,
    AclAction Action,
    ushort Priority)
{
    public const int ProtoIcmp = 1, ProtoTcp = 6, ProtoUdp = 17, ProtoIcmp6 = 58;

    /// <summary>Highest priority value a rule may have (priorities 0..MaxPriority, lower first).</summary>
    public const ushort MaxPriority = 4095;

    public bool IcmpLike => Proto == ProtoIcmp || Proto == ProtoIcmp6;

    public string ProtoName => Proto switch
    {
        -1 => "any",
        ProtoTcp => "tcp",
        ProtoUdp => "udp",
        ProtoIcmp => "icmp",
        ProtoIcmp6 => "icmp6",
        _ => Proto.ToString(CultureInfo.InvariantCulture),
    };

    public static string Range(ushort lo, ushort hi) =>
        lo == 0 && hi == ushort.MaxValue ? "any" : lo == hi ? lo.ToString(CultureInfo.InvariantCulture) : $"{lo}-{hi}";

    public static string ActionName(AclAction a) => a switch
    {
        AclAction.Pass => "pass",
        AclAction.Drop => "drop",
        _ => "reflect",
    };

    public static string DirectionName(AclDirection d) => d == AclDirection.Input ? "input" : "output";

    /// <summary>The rule in the words `classify add rule` takes (round-trips through <see cref="AclRuleParser"/>).</summary>
    public string Words()
    {
        var w = new List<string> { Port, DirectionName(Direction) };
        if (Src.Length > 0)
            w.AddRange(["src", Src.ToString()]);
        if (Dst.Length > 0)
            w.AddRange(["dst", Dst.ToString()]);
        if (Proto >= 0)
            w.AddRange(["proto", ProtoName]);
        if (SportLo != 0 || SportHi != ushort.MaxValue)
            w.AddRange([IcmpLike ? "icmp-type" : "sport", Range(SportLo, SportHi)]);
        if (DportLo != 0 || DportHi != ushort.MaxValue)
            w.AddRange([IcmpLike ? "icmp-code" : "dport", Range(DportLo, DportHi)]);
        if (TcpFlagsMask != 0)
            w.AddRange(["tcp-flags", $"0x{TcpFlags:x2}/0x{TcpFlagsMask:x2}"]);
        w.Add(ActionName(Action));
        if (Priority != 0)
            w.AddRange(["priority", Priority.ToString(CultureInfo.InvariantCulture)]);
        return string.Join(' ', w);
    }

    /// <summary>Whether the rule matches a packet of the given fields (the reference semantics
    /// every compiled matcher must agree with). Addresses big-endian in the low bits.</summary>
    public bool Matches(bool v6, UInt128 src, UInt128 dst, byte proto, ushort sport, ushort dport, byte tcpFlags)
    {
        if (v6 != V6)
            return false;
        if (Src.Length > 0 && new Prefix(v6, src, Src.Length).Address != Src.Address)
            return false;
        if (Dst.Length > 0 && new Prefix(v6, dst, Dst.Length).Address != Dst.Address)
            return false;
        if (Proto >= 0 && proto != Proto)
            return false;
        if (sport < SportLo || sport > SportHi || dport < DportLo || dport > DportHi)
            return false;
        return (tcpFlags & TcpFlagsMask) == (TcpFlags & TcpFlagsMask);
    }
}

/// <summary>Parses the words of `classify add rule` into rules, with a one-line error naming
/// the word at fault. A rule without an address is made for both families (two rules).</summary>
public static class AclRuleParser
{
    public const string Usage =
        "classify add rule <port> [input|output] [src <prefix>] [dst <prefix>] [proto <tcp|udp|icmp|icmp6|N>] " +
        "[sport <p>[-<q>]] [dport <p>[-<q>]] [icmp-type <t>[-<u>]] [icmp-code <c>[-<d>]] [tcp-flags <value>/<mask>] " +
        "[drop|pass|reflect] [priority <0-4095>]";

    public sealed class AclParseException(string message) : Exception(message);

    /// <summary>The rule (or the IPv4 and IPv6 pair of rules) the words describe; ids are given later.</summary>
    public static IReadOnlyList<AclRule> Parse(IReadOnlyList<string> words)
    {
        if (words.Count == 0)
            throw new AclParseException("a port is required: " + Usage);
        string port = words[0];
        var dir = AclDirection.Input;
        Prefix? src = null, dst = null;
        int proto = -1;
        (ushort Lo, ushort Hi)? sport = null, dport = null;
        byte flags = 0, flagsMask = 0;
        AclAction? action = null;
        ushort priority = 0;
        bool icmpFields = false, portFields = false;
        for (int i = 1; i < words.Count; i++)
        {
            string w = words[i];
            string Value()
            {
                if (i + 1 >= words.Count)
                    throw new AclParseException($"'{w}' needs a value");
                return words[++i];
            }
            switch (w)
            {
                case "input":
                    dir = AclDirection.Input;
                    break;
                case "output":
                    dir = AclDirection.Output;
                    break;
                case "src":
                    src = ParsePrefix(w, Value());
                    break;
                case "dst":
                    dst = ParsePrefix(w, Value());
                    break;
                case "proto":
                    proto = ParseProto(Value());
                    break;
                case "sport":
                    sport = ParseRange(w, Value(), ushort.MaxValue);
                    portFields = true;
                    break;
                case "dport":
                    dport = ParseRange(w, Value(), ushort.MaxValue);
                    portFields = true;
                    break;
                case "icmp-type":
                    sport = ParseRange(w, Value(), 255);
                    icmpFields = true;
                    break;
                case "icmp-code":
                    dport = ParseRange(w, Value(), 255);
                    icmpFields = true;
                    break;
                case "tcp-flags":
                    (flags, flagsMask) = ParseFlags(Value());
                    break;
                case "drop" or "pass" or "reflect" or "permit" or "deny":
                    if (action is not null)
                        throw new AclParseException($"'{w}': the action was already given");
                    action = w switch { "drop" or "deny" => AclAction.Drop, "reflect" => AclAction.Reflect, _ => AclAction.Pass };
                    break;
                case "priority":
                    string p = Value();
                    if (!ushort.TryParse(p, NumberStyles.None, CultureInfo.InvariantCulture, out priority) || priority > AclRule.MaxPriority)
                        throw new AclParseException($"priority '{p}': a number 0-{AclRule.MaxPriority}");
                    break;
                default:
                    throw new AclParseException($"unknown word '{w}': {Usage}");
            }
        }
        if (action is null)
            throw new AclParseException("an action is required: drop, pass or reflect");
        if (src is Prefix s1 && dst is Prefix d1 && s1.V6 != d1.V6)
            throw new AclParseException($"src {s1} and dst {d1} are of different families");
        if (portFields && icmpFields)
            throw new AclParseException("ports and ICMP type/code cannot both be given");
        if (portFields && proto is not (AclRule.ProtoTcp or AclRule.ProtoUdp or 132))
            throw new AclParseException("sport/dport need proto tcp, udp or 132 (sctp)");
        if (icmpFields && proto is not (AclRule.ProtoIcmp or AclRule.ProtoIcmp6))
            throw new AclParseException("icmp-type/icmp-code need proto icmp or icmp6");
        if (flagsMask != 0 && proto != AclRule.ProtoTcp)
            throw new AclParseException("tcp-flags needs proto tcp");
        bool? family = src?.V6 ?? dst?.V6;
        if (proto == AclRule.ProtoIcmp6)
        {
            if (family == false)
                throw new AclParseException("proto icmp6 with IPv4 addresses");
            family = true;
        }
        else if (proto == AclRule.ProtoIcmp)
        {
            if (family == true)
                throw new AclParseException("proto icmp with IPv6 addresses (use icmp6)");
            family = false;
        }
        var (sl, sh) = sport ?? ((ushort)0, ushort.MaxValue);
        var (dl, dh) = dport ?? ((ushort)0, ushort.MaxValue);
        AclRule Make(bool v6) => new(0, port, dir, v6, src ?? new Prefix(v6, 0, 0), dst ?? new Prefix(v6, 0, 0), proto,
            sl, sh, dl, dh, flags, flagsMask, action.Value, priority);
        return family is bool f ? [Make(f)] : [Make(false), Make(true)];
    }

    private static Prefix ParsePrefix(string word, string value)
    {
        try
        {
            Prefix p = Prefix.Parse(value);
            if (value.Contains('/', StringComparison.Ordinal) && Prefix.Parse(value.Split('/')[0] + (p.V6 ? "/128" : "/32")).Address != p.Address)
                throw new AclParseException($"{word} '{value}': host bits set (did you mean {p}?)");
            return p;
        }
        catch (Exception e) when (e is FormatException or ArgumentOutOfRangeException or OverflowException)
        {
            throw new AclParseException($"{word} '{value}': not a prefix");
        }
    }

    private static int ParseProto(string v) => v switch
    {
        "tcp" => AclRule.ProtoTcp,
        "udp" => AclRule.ProtoUdp,
        "icmp" => AclRule.ProtoIcmp,
        "icmp6" or "ipv6-icmp" => AclRule.ProtoIcmp6,
        "sctp" => 132,
        "any" => -1,
        _ => byte.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out byte n) ? n
            : throw new AclParseException($"proto '{v}': tcp, udp, icmp, icmp6, sctp, any or 0-255"),
    };

    private static (ushort, ushort) ParseRange(string word, string v, ushort max)
    {
        string[] parts = v.Split('-');
        if (parts.Length is < 1 or > 2
            || !ushort.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out ushort lo)
            || !ushort.TryParse(parts[^1], NumberStyles.None, CultureInfo.InvariantCulture, out ushort hi)
            || lo > hi || hi > max)
            throw new AclParseException($"{word} '{v}': a number or a range <low>-<high> within 0-{max}");
        return (lo, hi);
    }

    private static (byte, byte) ParseFlags(string v)
    {
        string[] parts = v.Split('/');
        if (parts.Length != 2 || !TryByte(parts[0], out byte value) || !TryByte(parts[1], out byte mask) || (value & ~mask) != 0)
            throw new AclParseException($"tcp-flags '{v}': <value>/<mask>, e.g. 0x02/0x12 (SYN without ACK); value bits within the mask");
        return (value, mask);

        static bool TryByte(string s, out byte b) =>
            s.StartsWith("0x", StringComparison.OrdinalIgnoreCase)
                ? byte.TryParse(s.AsSpan(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out b)
                : byte.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out b);
    }
}
