// Compile-only stub for tests: mirrors the public signature of androidx.activity.result.contract.ActivityResultContract, androidx.activity 1.9.
package androidx.activity.result.contract;

public abstract class ActivityResultContract<I, O> {}
