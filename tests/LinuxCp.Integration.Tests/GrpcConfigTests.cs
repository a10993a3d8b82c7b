using System.Net.Sockets;
using Grpc.Core;
using Grpc.Net.Client;
using LinuxCp.Management.Grpc;
using LinuxCp.TestSupport;
using AgentConfig = LinuxCp.Management.Grpc.Config;

namespace LinuxCp.Integration.Tests;

/// <summary>The gRPC Configurator (vpp-agent's shape) on lcpd's gRPC unix socket, with a real
/// .NET gRPC client; and its TCP listener's credentials.</summary>
[Collection("lcpd")]
public sealed class GrpcConfigTests(ConfigFixture f) : IClassFixture<ConfigFixture>
{
    internal static GrpcChannel Channel(string apiSocket) =>
        GrpcChannel.ForAddress("http://lcpd", new GrpcChannelOptions
        {
            HttpHandler = new SocketsHttpHandler
            {
                ConnectCallback = async (_, ct) =>
                {
                    var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                    await s.ConnectAsync(new UnixDomainSocketEndPoint(apiSocket + ".grpc"), ct);
                    return new NetworkStream(s, ownsSocket: true);
                },
            },
        });

    private AgentConfig Pair(string a, string b)
    {
        var c = new AgentConfig { LinuxConfig = new LinuxConfig() };
        c.LinuxConfig.Interfaces.Add(new Interface
        {
            Name = a, Type = Interface.Types.Type.Veth, Enabled = true, Mtu = 1450,
            Namespace = new NetNamespace { Type = NetNamespace.Types.ReferenceType.Nsid, Reference = f.NsA },
            Veth = new VethLink { PeerIfName = b, RxChecksumOffloading = VethLink.Types.ChecksumOffloading.ChksmOffloadDisabled },
            IpAddresses = { "192.168.82.1/24" },
        });
        c.LinuxConfig.Interfaces.Add(new Interface
        {
            Name = b, Type = Interface.Types.Type.Veth, Enabled = true,
            Namespace = new NetNamespace { Type = NetNamespace.Types.ReferenceType.Nsid, Reference = f.NsB },
            Veth = new VethLink { PeerIfName = a },
        });
        return c;
    }

    [Fact]
    public async Task UpdateGetDumpNotify_FullResync_Delete_InvalidArgument()
    {
        using GrpcChannel ch = Channel(f.Lcpd.Socket);
        var client = new ConfiguratorService.ConfiguratorServiceClient(ch);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        using AsyncServerStreamingCall<NotifyResponse> notify = client.Notify(new NotifyRequest(), cancellationToken: cts.Token);
        try
        {
            UpdateResponse u = await client.UpdateAsync(new UpdateRequest { Update = Pair("gv1", "gv2") });
            Assert.True(u.Ok, u.Error);
            Assert.Equal("ok", u.Outcome);
            Assert.Equal(1450, ConfigTests.Link(f.NsA, "gv1")["mtu"]!.GetValue<int>());
            Assert.Equal(["192.168.82.1/24"], ConfigTests.Addrs(f.NsA, "gv1"));
            // The offload setting survives the trip (ethtool shows it off on the link).
            Assert.Contains("rx-checksumming: off", Cmd.InNsOk(f.NsA, "ethtool", "-k", "gv1"), StringComparison.Ordinal);

            GetResponse g = await client.GetAsync(new GetRequest());
            Interface gv1 = g.Config.LinuxConfig.Interfaces.Single(i => i.Name == "gv1");
            Assert.Equal(VethLink.Types.ChecksumOffloading.ChksmOffloadDisabled, gv1.Veth.RxChecksumOffloading);
            Assert.Equal(1450u, gv1.Mtu);
            DumpResponse d = await client.DumpAsync(new DumpRequest());
            Assert.Equal(2, d.Dump.LinuxConfig.Interfaces.Count);
            Assert.Contains(d.States, s => s.Key == "config/linux/interfaces/v2/interface/gv2" && s.State == "CONFIGURED" && s.Source == "grpc");

            var seen = new List<NotifyResponse>();
            while (seen.Count(n => n.Notification.State == "CONFIGURED") < 2 && await notify.ResponseStream.MoveNext(cts.Token))
                seen.Add(notify.ResponseStream.Current);
            Assert.Contains(seen, n => n.Notification.Key == "config/linux/interfaces/v2/interface/gv1" && n.Notification.State == "CONFIGURED");
            Assert.True(seen[^1].NextIdx >= 2);

            // Bad input: InvalidArgument with the field named, nothing changed.
            AgentConfig bad = Pair("gv1", "gv2");
            bad.LinuxConfig.Interfaces[0].Mtu = 70000;
            var e = await Assert.ThrowsAsync<RpcException>(async () => await client.UpdateAsync(new UpdateRequest { Update = bad }));
            Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
            Assert.Contains("mtu: 70000 is outside 68-65535", e.Status.Detail, StringComparison.Ordinal);
            Assert.Equal(1450, ConfigTests.Link(f.NsA, "gv1")["mtu"]!.GetValue<int>());

            // full_resync with only gv3/gv4: this client's gv1/gv2 go.
            UpdateResponse r = await client.UpdateAsync(new UpdateRequest { Update = Pair("gv3", "gv4"), FullResync = true });
            Assert.True(r.Ok, r.Error);
            Assert.False(Net.LinkExists(f.NsA, "gv1"));
            Assert.True(Net.LinkExists(f.NsA, "gv3"));
            DeleteResponse del = await client.DeleteAsync(new DeleteRequest { Delete = Pair("gv3", "gv4") });
            Assert.True(del.Ok, del.Error);
            Assert.False(Net.LinkExists(f.NsA, "gv3"));
        }
        finally
        {
            await cts.CancelAsync();
            f.Lcpd.Ctl("config", "delete", "config/linux/");
        }
    }
}
