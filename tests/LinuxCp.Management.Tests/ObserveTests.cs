using LinuxCp.Management.Observe;
using Microsoft.Extensions.Logging;

namespace LinuxCp.Management.Tests;

public sealed class ObserveTests
{
    private static byte[] Hex(string h) => Convert.FromHexString(h.Replace(" ", "", StringComparison.Ordinal));

    [Fact]
    public void Decoder_ReadsEthernetIpv4Udp()
    {
        byte[] f = Hex("020000000002 020000000001 0800 45000020 0001 0000 40 11 0000 0a000102 0a000202 3039 0035 000c 0000 41424344");
        var lines = PacketDecoder.Decode(f);
        Assert.Equal(("ethernet", "02:00:00:00:00:01 -> 02:00:00:00:00:02 type 0x0800"), lines[0]);
        Assert.StartsWith("10.0.1.2 -> 10.0.2.2 ttl 64 proto udp len 32", lines[1].Detail, StringComparison.Ordinal);
        Assert.Equal(("udp", "12345 -> 53 len 12"), lines[2]);
    }

    [Fact]
    public void Decoder_ReadsArpAndRawIpv6()
    {
        byte[] arp = Hex("ffffffffffff 020000000001 0806 0001 0800 06 04 0001 020000000001 0a000102 000000000000 0a000101");
        var l = PacketDecoder.Decode(arp);
        Assert.Equal("request who-has 10.0.1.1 tell 10.0.1.2 (02:00:00:00:00:01)", l[1].Detail);

        byte[] v6 = Hex("60000000 0008 3a 40 20010db8000000000000000000000002 20010db8000000000000000000000001 8000 0000 0000 0000");
        var l6 = PacketDecoder.Decode(v6, startsWithIp: true);
        Assert.Equal("ip6", l6[0].Layer);
        Assert.StartsWith("2001:db8::2 -> 2001:db8::1 hlim 64 next icmp6", l6[0].Detail, StringComparison.Ordinal);
        Assert.Equal("icmp6", l6[1].Layer);
    }

    [Fact]
    public void Decoder_NeverThrows_OnTruncatedOrRandomBytes()
    {
        var rng = new Random(11);
        byte[] good = Hex("020000000002 020000000001 8100 0064 0800 46000020 0001 0000 40 06 0000 0a000102 0a000202 01020304 3039 0035");
        for (int n = 0; n <= good.Length; n++)
            PacketDecoder.Decode(good.AsSpan(0, n));
        for (int i = 0; i < 20_000; i++)
        {
            byte[] b = new byte[rng.Next(0, 128)];
            rng.NextBytes(b);
            if (b.Length > 13 && i % 2 == 0)
            {
                b[12] = (byte)(i % 3 == 0 ? 0x86 : 0x08);
                b[13] = (byte)(i % 3 == 0 ? 0xDD : 0x00);
            }
            PacketDecoder.Decode(b, startsWithIp: i % 5 == 0);
        }
    }

    [Fact]
    public void PcapWriter_WritesTheLibpcapLayout()
    {
        var ms = new MemoryStream();
        var w = new PcapWriter(ms, PcapWriter.LinkTypeEthernet);
        w.Write(1_700_000_000_123_456_789L, new byte[] { 1, 2, 3 }, 60);
        byte[] b = ms.ToArray();
        Assert.Equal(24 + 16 + 3, b.Length);
        Assert.Equal(0xa1b23c4du, BitConverter.ToUInt32(b, 0));
        Assert.Equal(2, BitConverter.ToUInt16(b, 4));
        Assert.Equal(4, BitConverter.ToUInt16(b, 6));
        Assert.Equal(1u, BitConverter.ToUInt32(b, 20));
        Assert.Equal(1_700_000_000u, BitConverter.ToUInt32(b, 24));
        Assert.Equal(123_456_789u, BitConverter.ToUInt32(b, 28));
        Assert.Equal(3u, BitConverter.ToUInt32(b, 32));
        Assert.Equal(60u, BitConverter.ToUInt32(b, 36));
        Assert.Equal(new byte[] { 1, 2, 3 }, b[40..]);
    }

    [Fact]
    public void LogSwitch_FiltersByTheRunTimeLevel()
    {
        LogLevel saved = LogSwitch.Level;
        try
        {
            LogSwitch.Level = LogLevel.Warning;
            Assert.False(LogSwitch.Filter("LinuxCp.X", LogLevel.Information));
            Assert.True(LogSwitch.Filter("LinuxCp.X", LogLevel.Error));
            LogSwitch.Level = LogLevel.Debug;
            Assert.True(LogSwitch.Filter("LinuxCp.X", LogLevel.Debug));
            Assert.True(LogSwitch.Filter("Microsoft.AspNetCore", LogLevel.Debug)); // debugging shows the framework too
            LogSwitch.Level = LogLevel.Information;
            Assert.False(LogSwitch.Filter("Microsoft.AspNetCore", LogLevel.Information));
            Assert.True(LogSwitch.TryParse("warning", out LogLevel l) && l == LogLevel.Warning);
            Assert.False(LogSwitch.TryParse("loud", out _));
        }
        finally
        {
            LogSwitch.Level = saved;
        }
    }
}
