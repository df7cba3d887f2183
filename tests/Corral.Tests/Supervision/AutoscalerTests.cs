using Corral.Supervision;


namespace Corral.Tests;

/// <summary>The autoscaler's decision alone: samples in, the wanted count out.</summary>
public class AutoscalerTests
{
    private static readonly DateTimeOffset T0 = new(2026, 1, 1, 12, 0, 0, TimeSpan.Zero);

    private static Autoscaler.LoadSample At(double seconds, long queued = 0, int busy = 0, int slots = 1, int perWorker = 1, bool booting = false) =>
        new(T0 + TimeSpan.FromSeconds(seconds), queued, busy, slots, perWorker, booting);

    [Fact]
    public void Pressure_for_less_than_up_after_is_not_enough()
    {
        var a = new Autoscaler(1, 4, T0) { UpAfter = TimeSpan.FromSeconds(1), Cooldown = TimeSpan.Zero };
        Assert.Null(a.OnSample(At(0.0, queued: 3), 1));
        Assert.Null(a.OnSample(At(0.5, queued: 3), 1));
        Assert.Null(a.OnSample(At(1.0, queued: 0, busy: 0), 1)); // a calm sample restarts the count
        Assert.Null(a.OnSample(At(1.5, queued: 3), 1));
        Assert.Null(a.OnSample(At(2.0, queued: 3), 1));
        var up = a.OnSample(At(2.5, queued: 3), 1);
        Assert.Equal(new Autoscaler.Decision(2, true, "3 connections queued for 1.0 s"), up);
    }

    [Fact]
    public void Never_above_max_nor_below_min()
    {
        var a = new Autoscaler(2, 3, T0) { UpAfter = TimeSpan.Zero, Cooldown = TimeSpan.Zero, DownAfter = TimeSpan.FromSeconds(1) };
        Assert.Null(a.OnSample(At(10, queued: 9), 3));
        Assert.Null(a.OnSample(At(20, busy: 0, slots: 2), 2));
        Assert.Null(a.OnSample(At(30, busy: 0, slots: 2), 2));
    }

    [Fact]
    public void Shift_moves_both_bounds_and_keeps_min_at_most_max()
    {
        var a = new Autoscaler(2, 5, T0);
        a.Shift(+3, T0);
        Assert.Equal((5, 8), (a.Min, a.Max));
        a.Shift(-6, T0);
        Assert.Equal((1, 2), (a.Min, a.Max));
        a.Shift(-5, T0);
        Assert.Equal((1, 1), (a.Min, a.Max));
        a.Shift(+2000, T0);
        Assert.Equal((1024, 1024), (a.Min, a.Max));
    }

    [Fact]
    public void A_step_down_needs_a_whole_calm_window_after_the_last_step_up()
    {
        var a = new Autoscaler(1, 3, T0) { UpAfter = TimeSpan.Zero, Cooldown = TimeSpan.Zero, DownAfter = TimeSpan.FromSeconds(10) };
        Assert.Equal(2, a.OnSample(At(1, queued: 1), 1)!.To);
        for (var t = 1.5; t < 11; t += 0.5)
        {
            Assert.Null(a.OnSample(At(t, slots: 2), 2));
        }
        Assert.Equal(new Autoscaler.Decision(1, false, "at most 0 of 2 slots busy and nothing queued for 10 s"), a.OnSample(At(11, slots: 2), 2));
    }
}
