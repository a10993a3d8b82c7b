using LinuxCp.TestSupport;

namespace LinuxCp.Integration.Tests;

/// <summary>One lcpd shared by the router tests: three hosts on three af_packet ports; ports 0
/// and 1 are paired at launch (lcp0, lcp1 in the router namespace, which routes between them),
/// port 2 is left unpaired for the run-time pair tests.</summary>
public sealed class RouterFixture : IDisposable
{
    public Topology Topo { get; }
    public LcpdProcess Lcpd { get; }

    public RouterFixture()
    {
        Topo = new Topology(hosts: 3);
        try
        {
            var eal = LcpdProcess.TestEal($"lcpt{Topo.Id}");
            eal.AddRange(Topo.VdevArgs());
            Lcpd = LcpdProcess.Start(Topo.Dp, eal, [.. LcpdProcess.TestFib, "--netns", Topo.Rt, "--mbufs", "8191",
                "--pair", $"{Topo.Hosts[0].PortName}={Topo.Hosts[0].MirrorName}",
                "--pair", $"{Topo.Hosts[1].PortName}={Topo.Hosts[1].MirrorName}"]);
            Topo.EnableRouting();
            Topo.ConfigureRouterInterface(Topo.Hosts[0]);
            Topo.ConfigureRouterInterface(Topo.Hosts[1]);
        }
        catch
        {
            Lcpd?.Dispose();
            Topo.Dispose();
            throw;
        }
    }

    public TestHost A => Topo.Hosts[0];
    public TestHost B => Topo.Hosts[1];
    public TestHost C => Topo.Hosts[2];

    public void Dispose()
    {
        Lcpd.Dispose();
        Topo.Dispose();
    }
}

[CollectionDefinition("lcpd", DisableParallelization = true)]
public sealed class LcpdCollection : ICollectionFixture<RouterFixture>;
