// Compile-only stub for tests: mirrors the public signature of android.view.ContextThemeWrapper, Android API level 36.
package android.view;

public class ContextThemeWrapper extends android.content.ContextWrapper {}
