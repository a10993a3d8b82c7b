using System.Text.Json.Nodes;
using LinuxCp.Management.Api;
using LinuxCp.Management.Contracts;

namespace LinuxCp.Management.Tests;

public class ProtocolTests
{
    [Fact]
    public void ParseRequest_Valid_ReturnsArgv() =>
        Assert.Equal(["show", "interfaces"], ApiServer.ParseRequest(Protocol.Request(["show", "interfaces"])));

    [Theory]
    [InlineData("", "malformed request")]
    [InlineData("garbage", "malformed request")]
    [InlineData("[1,2]", "expected a JSON object")]
    [InlineData("{}", "missing protocol version")]
    [InlineData("{\"v\":\"1\",\"argv\":[]}", "missing protocol version")]
    [InlineData("{\"v\":2,\"argv\":[]}", "unsupported protocol version 2")]
    [InlineData("{\"v\":1}", "missing \"argv\"")]
    [InlineData("{\"v\":1,\"argv\":\"show\"}", "missing \"argv\"")]
    [InlineData("{\"v\":1,\"argv\":[1]}", "must be strings")]
    [InlineData("{\"v\":1,\"argv\":[[[[[[[[[[\"x\"]]]]]]]]]]}", "malformed request")]
    public void ParseRequest_Malformed_ApiException(string line, string expected) =>
        Assert.Contains(expected, Assert.Throws<ApiException>(() => ApiServer.ParseRequest(line)).Message, StringComparison.Ordinal);

    [Fact]
    public void ParseRequest_TooManyArgs_ApiException()
    {
        string line = Protocol.Request(Enumerable.Repeat("x", 65));
        Assert.Contains("too many", Assert.Throws<ApiException>(() => ApiServer.ParseRequest(line)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Replies_HaveVersionAndOk()
    {
        var ok = JsonNode.Parse(Protocol.Ok(new JsonArray()))!;
        Assert.Equal(1, ok["v"]!.GetValue<int>());
        Assert.True(ok["ok"]!.GetValue<bool>());
        var err = JsonNode.Parse(Protocol.Error("nope"))!;
        Assert.False(err["ok"]!.GetValue<bool>());
        Assert.Equal("nope", err["error"]!.GetValue<string>());
    }

    [Fact]
    public void Catalog_LongestMatch_ReturnsRest()
    {
        CommandSpec? c = CommandCatalog.Match(["lcp", "create", "p0", "host-if", "x"], out string[] rest);
        Assert.Equal("lcp create", c?.Path);
        Assert.Equal(["p0", "host-if", "x"], rest);
        Assert.Null(CommandCatalog.Match(["show"], out _));
        Assert.Null(CommandCatalog.Match(["show", "bogus"], out _));
    }

    [Fact]
    public void Dtos_SerializeSnakeCase()
    {
        var node = System.Text.Json.JsonSerializer.SerializeToNode(
            new InterfaceDto("p", 1, "phy", "02:00:00:00:00:01", 1500, true, false, 1, 2, 3, 4, 5, 6), Protocol.Json)!.AsObject();
        Assert.Equal(["name", "port_id", "kind", "mac", "mtu", "admin_up", "link_up", "rx_packets", "tx_packets",
            "rx_bytes", "tx_bytes", "drops", "punts", "forwarded", "parent", "vlan", "kernel_if", "kernel_netns"], node.Select(p => p.Key));
        var lcp = System.Text.Json.JsonSerializer.SerializeToNode(new LcpDto("p", "h", null, "tap", 3), Protocol.Json)!.AsObject();
        Assert.Equal(["port", "host_if", "netns", "kind", "host_ifindex", "state", "reason", "table", "table_source", "persist", "adopted",
            "port_link_up", "mirror_admin_up", "mirror_carrier", "link_changes", "link_pending"], lcp.Select(p => p.Key));
    }

    [Fact]
    public void WriteOk_SameTextAsTheNodePath_ForDtosNodesAndNull()
    {
        // The API socket writes results straight into its buffer; the text must be what the
        // node path (REST's and the tests' Ok) gives, byte for byte: clients parse both.
        object?[] results =
        [
            new List<ErrorCounterDto> { new("ttl-expired", "punt", 3, "TTL <= 1: to Linux <for ICMP> & \"more\"", [1, 2]) },
            new LcpDto("p", "h", null, "tap", 3),
            new JsonObject { ["a"] = 1.5, ["b"] = "x\u00e9y" },
            null,
        ];
        var buf = new System.Buffers.ArrayBufferWriter<byte>();
        foreach (object? r in results)
        {
            buf.ResetWrittenCount();
            Protocol.WriteOk(buf, r);
            JsonNode? node = r as JsonNode ?? System.Text.Json.JsonSerializer.SerializeToNode(r, r?.GetType() ?? typeof(object), Protocol.Json);
            Assert.Equal(Protocol.Ok(node?.DeepClone()), System.Text.Encoding.UTF8.GetString(buf.WrittenSpan));
        }
    }

    [Fact]
    public void ProcFsField_ReadsTheNumberAfterItsKeyAtALineStart()
    {
        ReadOnlySpan<byte> status = "Name:\tlcpd\nVmRSSx: 7 kB\nVmRSS:\t  123456 kB\nHugePages_Free:  12\nEmpty:\n"u8;
        Assert.Equal(123456, LinuxCp.Management.Observe.ProcFs.Field(status, "VmRSS:"u8));
        Assert.Equal(12, LinuxCp.Management.Observe.ProcFs.Field(status, "HugePages_Free:"u8));
        Assert.Equal(0, LinuxCp.Management.Observe.ProcFs.Field(status, "Empty:"u8));
        Assert.Equal(0, LinuxCp.Management.Observe.ProcFs.Field(status, "Missing:"u8));
        Assert.Equal(0, LinuxCp.Management.Observe.ProcFs.Field(status, "lcpd"u8)); // not at a line start
    }
}
