using Corral.Agent.Contract;
using Corral.Agent.Os;

namespace Corral.Tests;

/// <summary>A worker that switched users says as whom a file was refused (the switch itself: WorkerUserTests, integration).</summary>
public class CredentialsTests
{
    private static readonly WorkerUser Nobody = new() { Uid = 65534, Gid = 65534, Groups = [65534], Name = "nobody" };

    [Fact]
    public void A_refused_file_names_the_user_the_worker_runs_as()
    {
        Assert.Equal("Access to the path '/etc/key.pem' is denied. (the worker runs as user nobody, uid 65534, gid 65534: -u/-g)",
            Credentials.Explain("Access to the path '/etc/key.pem' is denied.", Nobody));
        Assert.EndsWith("(the worker runs as user nobody, uid 65534, gid 65534: -u/-g)", Credentials.Explain("open: Permission denied", Nobody));
    }

    [Fact]
    public void Other_errors_and_workers_that_did_not_switch_are_left_alone()
    {
        Assert.Equal("boom", Credentials.Explain("boom", Nobody));
        Assert.Equal("Access to the path '/x' is denied.", Credentials.Explain("Access to the path '/x' is denied.", null));
    }
}
