// Compile-only stub for tests: mirrors the public signature of androidx.activity.result.contract.ActivityResultContracts, androidx.activity 1.9.
package androidx.activity.result.contract;

public final class ActivityResultContracts {
    public static final class RequestPermission extends ActivityResultContract<String, Boolean> {
        public RequestPermission() {}
    }
}
