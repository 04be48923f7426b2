// hello-site: proves the script is served with the right type and runs.
document.addEventListener("DOMContentLoaded", () => {
  const clock = document.getElementById("clock");
  if (!clock) return;
  const tick = () => {
    clock.textContent = "JavaScript is running; it is " + new Date().toLocaleTimeString() + ".";
  };
  tick();
  setInterval(tick, 1000);
});
