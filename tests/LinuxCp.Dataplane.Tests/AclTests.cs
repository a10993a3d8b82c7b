using System.Buffers.Binary;
using LinuxCp.Dataplane.Features;
using LinuxCp.Dataplane.Fib;

namespace LinuxCp.Dataplane.Tests;

/// <summary>The classifier's rules, keys and reference matcher on synthetic headers: prefixes,
/// port and ICMP ranges, TCP flags, IPv6, priority order, fragments, and the CLI words.</summary>
public sealed unsafe class AclTests
{
    private static AclRule Rule(string words, uint id = 1) => AclRuleParser.Parse(words.Split(' '))[0] with { Id = id };

    private static byte[] Ip4(string src, string dst, byte proto, ushort sport = 0, ushort dport = 0, byte flags = 0, ushort frag = 0, byte icmpType = 0, byte icmpCode = 0)
    {
        var b = new byte[20 + 20];
        b[0] = 0x45;
        BinaryPrimitives.WriteUInt16BigEndian(b.AsSpan(2), (ushort)b.Length);
        BinaryPrimitives.WriteUInt16BigEndian(b.AsSpan(6), frag);
        b[8] = 64;
        b[9] = proto;
        System.Net.IPAddress.Parse(src).GetAddressBytes().CopyTo(b, 12);
        System.Net.IPAddress.Parse(dst).GetAddressBytes().CopyTo(b, 16);
        if (proto is 1)
        {
            b[20] = icmpType;
            b[21] = icmpCode;
        }
        else
        {
            BinaryPrimitives.WriteUInt16BigEndian(b.AsSpan(20), sport);
            BinaryPrimitives.WriteUInt16BigEndian(b.AsSpan(22), dport);
            b[33] = flags;
        }
        return b;
    }

    private static byte[] Ip6(string src, string dst, byte next, ushort sport = 0, ushort dport = 0, byte icmpType = 0)
    {
        var b = new byte[40 + 20];
        b[0] = 0x60;
        BinaryPrimitives.WriteUInt16BigEndian(b.AsSpan(4), 20);
        b[6] = next;
        b[7] = 64;
        System.Net.IPAddress.Parse(src).GetAddressBytes().CopyTo(b, 8);
        System.Net.IPAddress.Parse(dst).GetAddressBytes().CopyTo(b, 24);
        if (next == 58)
            b[40] = icmpType;
        else
        {
            BinaryPrimitives.WriteUInt16BigEndian(b.AsSpan(40), sport);
            BinaryPrimitives.WriteUInt16BigEndian(b.AsSpan(42), dport);
        }
        return b;
    }

    /// <summary>The 1-based rank of the first matching rule of <paramref name="rules"/> (in
    /// match order), 0 for none, through the key and the reference matcher.</summary>
    private static uint Match(byte[] packet, params AclRule[] rules)
    {
        bool v6 = packet[0] >> 4 == 6;
        AclRule[] sorted = AclRuleOrder.Sort(rules.Where(r => r.V6 == v6));
        using var m = new ManagedAclMatcher(sorted, v6);
        byte* key = stackalloc byte[AclKey.Size6];
        fixed (byte* p = packet)
        {
            if (v6)
                AclKey.Build6(p, (uint)packet.Length, key);
            else
                AclKey.Build4(p, (uint)packet.Length, key);
        }
        uint result;
        m.Classify(&key, &result, 1);
        return result;
    }

    [Fact]
    public void Key4_CarriesTheFiveTupleFlagsAndIcmpInThePortFields()
    {
        byte[] tcp = Ip4("10.1.2.3", "192.0.2.9", 6, 40000, 443, flags: 0x12);
        byte* key = stackalloc byte[AclKey.Size4];
        fixed (byte* p = tcp)
            AclKey.Build4(p, (uint)tcp.Length, key);
        var f = AclKey.Read(key, false);
        Assert.Equal((UInt128)0x0A010203, f.Src);
        Assert.Equal((UInt128)0xC0000209, f.Dst);
        Assert.Equal((6, 40000, 443, 0x12), ((int)f.Proto, (int)f.Sport, (int)f.Dport, (int)f.Flags));
        Assert.Equal(6, key[0]);
        Assert.Equal(0x0A, key[4]); // network order, as rte_acl reads it

        byte[] icmp = Ip4("10.1.2.3", "192.0.2.9", 1, icmpType: 8, icmpCode: 0);
        fixed (byte* p = icmp)
            AclKey.Build4(p, (uint)icmp.Length, key);
        var g = AclKey.Read(key, false);
        Assert.Equal((1, 8, 0), ((int)g.Proto, (int)g.Sport, (int)g.Dport));
    }

    private static (int, int) Ports(byte* key)
    {
        var f = AclKey.Read(key, false);
        return (f.Sport, f.Dport);
    }

    [Fact]
    public void Key4_LaterFragmentOrTruncatedL4_HasNoPorts()
    {
        byte[] frag = Ip4("10.0.0.1", "10.0.0.2", 17, 53, 53, frag: 185); // offset 185*8
        byte* key = stackalloc byte[AclKey.Size4];
        fixed (byte* p = frag)
            AclKey.Build4(p, (uint)frag.Length, key);
        Assert.Equal((0, 0), Ports(key));
        byte[] first = Ip4("10.0.0.1", "10.0.0.2", 17, 53, 53, frag: 0x2000); // MF set, offset 0: a first fragment has ports
        fixed (byte* p = first)
            AclKey.Build4(p, (uint)first.Length, key);
        Assert.Equal((53, 53), Ports(key));
        fixed (byte* p = first)
            AclKey.Build4(p, 22, key); // two bytes of L4 in the segment
        Assert.Equal((0, 0), Ports(key));
    }

    [Fact]
    public void Matching_PrefixesRangesProtoAndFlags()
    {
        AclRule r = Rule("p0 input src 10.0.0.0/8 dst 192.0.2.0/24 proto tcp dport 80-443 drop");
        Assert.Equal(1u, Match(Ip4("10.9.9.9", "192.0.2.1", 6, 1234, 80), r));
        Assert.Equal(1u, Match(Ip4("10.9.9.9", "192.0.2.1", 6, 1234, 443), r));
        Assert.Equal(0u, Match(Ip4("10.9.9.9", "192.0.2.1", 6, 1234, 444), r));
        Assert.Equal(0u, Match(Ip4("11.0.0.1", "192.0.2.1", 6, 1234, 80), r));
        Assert.Equal(0u, Match(Ip4("10.9.9.9", "192.0.3.1", 6, 1234, 80), r));
        Assert.Equal(0u, Match(Ip4("10.9.9.9", "192.0.2.1", 17, 1234, 80), r));

        AclRule syn = Rule("p0 proto tcp tcp-flags 0x02/0x12 drop");
        Assert.Equal(1u, Match(Ip4("1.1.1.1", "2.2.2.2", 6, 1, 2, flags: 0x02), syn));
        Assert.Equal(0u, Match(Ip4("1.1.1.1", "2.2.2.2", 6, 1, 2, flags: 0x12), syn)); // SYN-ACK
        Assert.Equal(0u, Match(Ip4("1.1.1.1", "2.2.2.2", 6, 1, 2, flags: 0x10), syn));

        AclRule echo = Rule("p0 proto icmp icmp-type 8 drop");
        Assert.Equal(1u, Match(Ip4("1.1.1.1", "2.2.2.2", 1, icmpType: 8), echo));
        Assert.Equal(0u, Match(Ip4("1.1.1.1", "2.2.2.2", 1, icmpType: 0), echo));
    }

    [Fact]
    public void Matching_Ipv6AndFamilies()
    {
        AclRule r6 = Rule("p0 src 2001:db8::/32 proto udp sport 53 pass");
        Assert.True(r6.V6);
        Assert.Equal(1u, Match(Ip6("2001:db8:1::5", "2001:db8:2::1", 17, 53, 9999), r6));
        Assert.Equal(0u, Match(Ip6("2001:db9::5", "2001:db8:2::1", 17, 53, 9999), r6));
        Assert.Equal(0u, Match(Ip4("10.0.0.1", "10.0.0.2", 17, 53, 9999), r6));
        AclRule echo6 = Rule("p0 proto icmp6 icmp-type 128 drop");
        Assert.True(echo6.V6);
        Assert.Equal(1u, Match(Ip6("2001:db8::1", "2001:db8::2", 58, icmpType: 128), echo6));

        // No address and no family-bound protocol: one rule per family.
        var both = AclRuleParser.Parse("p0 proto udp dport 53 drop".Split(' '));
        Assert.Equal(2, both.Count);
        Assert.Equal([false, true], both.Select(x => x.V6));
    }

    [Fact]
    public void Order_PriorityThenId_FirstMatchWins()
    {
        AclRule any = Rule("p0 src 10.0.0.0/8 drop priority 10", id: 1);
        AclRule web = Rule("p0 src 10.0.0.0/8 proto tcp dport 80 pass priority 5", id: 2);
        AclRule web2 = Rule("p0 src 10.0.0.0/8 proto tcp dport 80 drop priority 5", id: 3);
        byte[] http = Ip4("10.1.1.1", "192.0.2.1", 6, 999, 80);
        AclRule[] sorted = AclRuleOrder.Sort([any, web2, web]);
        Assert.Equal([2u, 3u, 1u], sorted.Select(x => x.Id));
        Assert.Equal(1u, Match(http, any, web, web2)); // rank 1 = web (priority 5, lower id)
        Assert.Equal(3u, Match(Ip4("10.1.1.1", "192.0.2.1", 17, 999, 80), any, web, web2)); // only "any"
    }

    [Theory]
    [InlineData("p0 drop", null)]
    [InlineData("p0 output src 10.0.0.0/8 dst 192.0.2.0/24 proto tcp sport 1024-65535 dport 443 tcp-flags 0x02/0x12 reflect priority 7", null)]
    [InlineData("p0 src 10.0.0.1/8 drop", "host bits set")]
    [InlineData("p0 src 10.0.0.0/8 dst 2001:db8::/32 drop", "different families")]
    [InlineData("p0 dport 80 drop", "need proto tcp")]
    [InlineData("p0 proto udp dport 80-70 drop", "a number or a range")]
    [InlineData("p0 proto icmp icmp-type 300 drop", "within 0-255")]
    [InlineData("p0 proto tcp", "an action is required")]
    [InlineData("p0 drop pass", "already given")]
    [InlineData("p0 proto tcp tcp-flags 0x12/0x02 drop", "within the mask")]
    [InlineData("p0 priority 5000 drop", "0-4095")]
    [InlineData("p0 bogus drop", "unknown word 'bogus'")]
    [InlineData("p0 proto icmp src 2001:db8::/32 drop", "use icmp6")]
    [InlineData("p0 proto 300 drop", "0-255")]
    [InlineData("p0 src", "needs a value")]
    public void Parse_ClearErrors_AndWordsRoundTrip(string words, string? error)
    {
        if (error is not null)
        {
            var e = Assert.Throws<AclRuleParser.AclParseException>(() => AclRuleParser.Parse(words.Split(' ')));
            Assert.Contains(error, e.Message, StringComparison.Ordinal);
            return;
        }
        foreach (AclRule r in AclRuleParser.Parse(words.Split(' ')))
        {
            AclRule again = AclRuleParser.Parse(r.Words().Split(' ')).Single(x => x.V6 == r.V6);
            Assert.Equal(r, again);
        }
    }

    [Fact]
    public void RteEncoding_RankPriorityAndFieldsInTheRecord()
    {
        AclRule r = Rule("p0 src 10.0.0.0/8 dst 2.0.0.0/7 proto tcp sport 1-2 dport 80 tcp-flags 0x02/0x12 drop");
        var w = new uint[15];
        RteAclMatcher.Encode(r, 4, false, w);
        Assert.Equal(5u, w[0]);
        Assert.Equal((1u << 29) - 5, w[1]);
        Assert.Equal(6u | (0xFFu << 8) | (0x02u << 16) | (0x12u << 24), w[2]);
        Assert.Equal(1u | (2u << 16), w[3]);
        Assert.Equal(80u | (80u << 16), w[4]);
        Assert.Equal((8u, 7u, 0x0A000000u, 0x02000000u), (w[5], w[6], w[7], w[11]));
        AclRule v6 = Rule("p0 src 2001:db8::/32 drop");
        RteAclMatcher.Encode(v6, 0, true, w);
        Assert.Equal((32u, 0x20010DB8u, 0u), (w[5], w[7], w[8]));
        Assert.Equal(0u, w[2] & 0xFF00); // any protocol: mask 0
        Assert.Throws<ArgumentException>(() => RteAclMatcher.Encode(v6, 0, false, w));
    }
}
