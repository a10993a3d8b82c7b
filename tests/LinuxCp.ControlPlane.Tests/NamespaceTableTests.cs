using LinuxCp.ControlPlane.Netlink;
using LinuxCp.ControlPlane.Sync;
using LinuxCp.Dataplane.Fib;

namespace LinuxCp.ControlPlane.Tests;

/// <summary>A second namespace whose main table cannot be opened (no memory left for it): its
/// ports are bound to the table slot that has no FIB (everything punted to Linux), with one
/// warning that says so and what to change; nothing throws.</summary>
public sealed class NamespaceTableTests
{
    [Fact]
    public void SecondNamespace_MainTableCannotOpen_PortsPuntEverything_Warned()
    {
        using var h = new SyncHarness();
        var warnings = new List<string>();
        var bound = new List<(ushort Port, int Table)>();
        h.Backend.FailCreate = true;
        using var other = new NamespaceSync(h.Fib, 1, "rt", new SyncOptions { ExtraTable4 = new(1024, 16), ExtraTable6 = new(1024, 16) })
        {
            Warn = warnings.Add,
            PortTableChanged = (p, t) => bound.Add((p, t)),
            ApplyMirrorLink = (m, up, mtu, mac) => mac ?? m.PortMac,
        };
        var m = new MirrorInfo(20, "lcp5", 5, false, SyncHarness.Mac0);
        other.SetMirrors([m]);
        other.Flush();
        Assert.Equal([((ushort)5, FibSnapshot.PuntTable)], bound);
        Assert.Contains(warnings, w => w.Contains("netns rt: its main table cannot be opened", StringComparison.Ordinal)
            && w.Contains("punt every IP packet to Linux", StringComparison.Ordinal));
        Assert.Equal(-1, other.TableIndex(Nl.TableMain));

        // The slot stays empty in every snapshot: a worker finds no FIB there.
        h.Backend.FailCreate = false;
        h.Fib.Commit();
        Assert.All(h.Publisher.Published, s => Assert.Equal(0, s.V4[FibSnapshot.PuntTable]));
    }
}
