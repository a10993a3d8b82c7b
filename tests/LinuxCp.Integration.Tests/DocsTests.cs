using LinuxCp.TestSupport;

namespace LinuxCp.Integration.Tests;

/// <summary>Every command block of README.md and docs/*.md marked runnable (an HTML comment
/// <c>&lt;!-- doctest --&gt;</c> before its fence) runs as written, on real DPDK, in a throw-away
/// topology of its own (tests/doctest/run_docs.py): a documented example cannot break unnoticed.</summary>
[Collection("lcpd")]
public sealed class DocsTests
{
    public static TheoryData<string> Files()
    {
        var data = new TheoryData<string>();
        foreach (string f in new[] { "README.md" }.Concat(Directory.GetFiles(Path.Combine(Repo.Root, "docs"), "*.md").Select(p => Path.GetRelativePath(Repo.Root, p)).Order()))
            if (File.ReadAllText(Path.Combine(Repo.Root, f)).Contains("<!-- doctest", StringComparison.Ordinal))
                data.Add(f);
        return data;
    }

    [Fact]
    public void TheReadmeLaunchExampleIsRunnable()
    {
        string readme = File.ReadAllText(Path.Combine(Repo.Root, "README.md"));
        Assert.Contains("<!-- doctest: daemon -->\n```sh\nbin/lcpd --no-huge -m 512", readme, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(Files))]
    public void MarkedBlocksRunAsWritten(string file)
    {
        CmdResult r = Cmd.Run("/usr/bin/python3", [Path.Combine(Repo.Root, "tests", "doctest", "run_docs.py"), Path.Combine(Repo.Root, file)], TimeSpan.FromMinutes(10));
        Assert.True(r.Code == 0, $"{file}:\n{r.Out}\n{r.Err}");
        Assert.Contains("ok ", r.Out, StringComparison.Ordinal);
    }
}
